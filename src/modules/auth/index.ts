import { Elysia, t } from 'elysia';
import { clientIp } from '../../lib/client-ip';
import { JSON_BODIES } from '../../lib/input';
import { authGuard } from './guard';
import {
  ChangePasswordBody,
  ChangePasswordResponse,
  DeleteAccountBody,
  Detail,
  LoginBody,
  LogoutBody,
  RefreshBody,
  RefreshResponse,
  RegisterBody,
  TokenPairResponse,
  User,
  ValidationDetail,
} from './model';
import { toUserDto } from './repository';
import type { AuthService } from './service';

/** The login route: refused input there answers as a wrong password does (SPEC §2). */
export const LOGIN_ROUTE = '/api/token/pair';

/** `/api/auth/*` and `/api/token/*` (SPEC §4). */
export const authModule = (auth: AuthService, trustProxy: boolean) =>
  new Elysia({ name: 'auth-module', seed: auth })
    .use(authGuard(auth))
    .group('/api/auth', { detail: { tags: ['auth'] } }, (app) =>
      app
        .post('/register', async ({ body, status }) => status(201, toUserDto(await auth.register(body))), {
          parse: JSON_BODIES,
          body: RegisterBody,
          response: { 201: User, 409: Detail, 422: ValidationDetail },
          detail: { summary: 'Create an account' },
        })
        .post(
          '/logout',
          async ({ user, token, body }) => {
            await auth.logout(user, token, body.refresh);
            return { detail: 'Successfully logged out' };
          },
          {
            auth: true,
            parse: JSON_BODIES,
            body: LogoutBody,
            response: { 200: Detail },
            detail: { summary: 'Blacklist the access token and, if given, the refresh token' },
          },
        )
        .get('/me', ({ user }) => toUserDto(user), {
          auth: true,
          response: { 200: User },
          detail: { summary: 'The signed-in user' },
        })
        .delete(
          '/me',
          async ({ user, body, status }) => {
            await auth.deleteAccount(user, body.password);
            return status(204, undefined);
          },
          {
            auth: true,
            parse: JSON_BODIES,
            body: DeleteAccountBody,
            response: { 204: t.Void(), 422: ValidationDetail },
            detail: {
              summary: 'Delete the account, its conversations and messages; its tokens and sockets end',
            },
          },
        )
        .post(
          '/password',
          ({ user, body }) => auth.changePassword(user, body.current_password, body.new_password),
          {
            auth: true,
            parse: JSON_BODIES,
            body: ChangePasswordBody,
            response: { 200: ChangePasswordResponse, 422: ValidationDetail },
            detail: { summary: 'Change the password: every token issued before is refused from now on' },
          },
        ),
    )
    .group('/api/token', { detail: { tags: ['token'] } }, (app) =>
      app
        .post(
          '/pair',
          ({ body, request, server }) =>
            auth.login(body.username, body.password, clientIp(request, server, trustProxy)),
          {
            parse: JSON_BODIES,
            body: LoginBody,
            response: { 200: TokenPairResponse, 401: Detail, 429: Detail },
            detail: { summary: 'Log in: obtain an access and a refresh token' },
          },
        )
        .post('/refresh', ({ body }) => auth.refresh(body.refresh), {
          parse: JSON_BODIES,
          body: RefreshBody,
          response: { 200: RefreshResponse, 401: Detail },
          detail: { summary: 'Rotate the refresh token and obtain a new access token' },
        }),
    );

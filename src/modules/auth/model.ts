import { t } from 'elysia';
import { chars } from '../../lib/chars';

/** The users.email column's length. */
export const MAX_EMAIL_LENGTH = 254;

export const RegisterBody = t.Object({
  username: chars(1, 150, { examples: ['alice'] }),
  email: t.String({ format: 'email', maxLength: MAX_EMAIL_LENGTH, examples: ['alice@example.com'] }),
  password: t.String({ minLength: 1, maxLength: 1024, examples: ['Correct-Horse-9-Battery'] }),
});

export const LoginBody = t.Object({
  username: chars(1, 150),
  password: t.String({ minLength: 1, maxLength: 1024 }),
});

export const RefreshBody = t.Object({ refresh: t.String({ minLength: 1, maxLength: 4096 }) });

export const LogoutBody = t.Object({ refresh: t.Optional(t.String({ minLength: 1, maxLength: 4096 })) });

export const ChangePasswordBody = t.Object({
  current_password: t.String({ minLength: 1, maxLength: 1024 }),
  new_password: t.String({ minLength: 1, maxLength: 1024 }),
});

export const ChangePasswordResponse = t.Object({
  detail: t.String(),
  access: t.String(),
  refresh: t.String(),
});

export const DeleteAccountBody = t.Object({ password: t.String({ minLength: 1, maxLength: 1024 }) });

export const User = t.Object({
  id: t.String({ format: 'uuid' }),
  username: t.String(),
  email: t.String(),
  date_joined: t.String({ format: 'date-time' }),
});

export const TokenPairResponse = t.Object({
  username: t.String(),
  access: t.String(),
  refresh: t.String(),
});

export const RefreshResponse = t.Object({ access: t.String(), refresh: t.String() });

export const Detail = t.Object({ detail: t.String(), code: t.Optional(t.String()) });

export const ValidationDetail = t.Object({
  detail: t.Array(
    t.Object({ loc: t.Array(t.Union([t.String(), t.Number()])), msg: t.String(), type: t.String() }),
  ),
});

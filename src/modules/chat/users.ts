import type { Bus, ReplyEvent } from './bus';

/** The lifecycle events about a user rather than a conversation. */
export type UserEvent = Extract<ReplyEvent, { t: 'gone' | 'limits' }>;

export interface UserSettings {
  /** Closes this instance's sockets of a user whose tokens (or whose token `tokenId`) are void. */
  closeUser(userId: string, tokenId?: string): void;
  /** Forgets what this instance knew of a user's daily limits. */
  forgetLimits(userId: string): void;
}

/**
 * What reaches a user rather than a conversation, on every instance, over the bus's
 * lifecycle channel: staff changed their limits; their tokens are void, so their
 * sockets close (a logout: only those of the logged-out token); and when they are
 * deleted or deactivated, their replies stop.
 * `stopReplies` stops a user's replies on this instance, those still being admitted too.
 */
export const createUserEvents = (bus: Bus, settings: UserSettings, stopReplies: (userId: string) => void) => {
  /** Closes a user's sockets here and, when `stopping`, stops their replies here. */
  const closeHere = (userId: string, stopping: boolean, tokenId?: string) => {
    settings.closeUser(userId, tokenId);
    if (stopping) stopReplies(userId);
  };

  return {
    /** A lifecycle event about a user, from another instance. */
    heard: (event: UserEvent) => {
      if (event.t === 'gone') closeHere(event.u, event.s === true, event.j);
      else settings.forgetLimits(event.u);
    },

    /**
     * Staff changed a user's limits: every instance reads them again. Resolves once the
     * other instances were told (or could not be).
     */
    limitsChanged: async (userId: string) => {
      settings.forgetLimits(userId);
      if (bus.hasPeers()) await bus.limits(userId).catch(() => {});
    },

    /**
     * A user's tokens are void (a new password), or with `tokenId` that one access token
     * (a logout): the sockets they authenticated close with 4001 here and on every other
     * instance. Their replies go on, stored for when they sign in again.
     */
    signOut: (userId: string, tokenId?: string) => {
      closeHere(userId, false, tokenId);
      if (bus.hasPeers()) void bus.gone(userId, false, tokenId);
    },

    /**
     * A user is deleted or deactivated: their sockets close with 4001 and their replies
     * stop (the provider sees its request closed), here and on every other instance.
     */
    shutOut: (userId: string) => {
      closeHere(userId, true);
      if (bus.hasPeers()) void bus.gone(userId, true);
    },
  };
};

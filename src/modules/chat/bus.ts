import { describeError } from '../../lib/failures';
import type { Logger } from '../../lib/logger';
import type { Store } from '../../store';

/**
 * How the replies of a conversation reach its sockets on other instances (SPEC §11),
 * over the store's publish/subscribe: Redis, or the in-process store within one
 * process. Pub/sub rather than Redis Streams: nothing is kept per delta, a reply whose
 * conversation nobody follows elsewhere publishes no text at all (the common case,
 * and the benchmark's), and the one thing a late socket needs, the text so far, the
 * producing instance holds in memory and sends when asked.
 *
 * - One channel every instance listens to carries each reply's lifecycle: `start`,
 *   `end` (with the final frame), `stop` requests and `follow` requests, and the
 *   conversations' `updated` frames (SPEC §12).
 * - A channel per reply carries its text, and only once some instance has asked to
 *   follow it: first a snapshot of the text so far (offset 0), then each delta with
 *   its offset, and a `beat` when quiet, so a follower can tell a reply whose
 *   instance died (silent for the AI timeout) from a slow one.
 * - A key per conversation names the reply streaming in it (with a time-to-live, kept
 *   fresh while it streams), so a socket arriving mid-reply learns it exists.
 * - Each instance says `hello` on the lifecycle channel every few seconds (and answers a
 *   newcomer's at once). An instance that has heard no other announces nothing at all:
 *   a single instance, the embedded default, pays no store round trip for any of this.
 *   When a peer appears, the replies already streaming are announced then.
 */

export type LifecycleEvent =
  /** A reply began; `m` is the user message it stored (message.created's payload), '' for none. */
  | { t: 'start'; c: string; r: string; p: string; m: string; from: string }
  /** The conversation changed; `f` is its conversation.updated frame. */
  | { t: 'updated'; c: string; f: string; from: string }
  /** Conversation `c` was deleted: its reply stops and its sockets close everywhere. */
  | { t: 'removed'; c: string; from: string }
  /**
   * User `u`'s tokens are void (deleted, deactivated, a new password): their sockets
   * close everywhere, and with `s` (deleted, deactivated) their replies stop. With `j`
   * (a logout) only that access token is void: the sockets it authenticated close.
   */
  | { t: 'gone'; u: string; s?: true; j?: string; from: string }
  /** Staff changed user `u`'s daily limits: what any instance knew of them is stale. */
  | { t: 'limits'; u: string; from: string }
  /**
   * A reply ended; `f` is its final frame and `x` its whole text, so a follower whose
   * snapshot never came (the reply was over first) still shows every delta.
   */
  | { t: 'end'; c: string; r: string; f: string; x: string; from: string }
  | { t: 'stop'; c: string; from: string }
  /** An instance asks the producer of `r` to publish its text. */
  | { t: 'follow'; c: string; r: string; from: string }
  /** An instance is up; `new` when it has just started (others answer at once). */
  | { t: 'hello'; from: string; new?: boolean };

/** What `listen` hands on: hellos are the bus's own business. */
export type ReplyEvent = Exclude<LifecycleEvent, { t: 'hello' }>;

export type TextEvent = { t: 'text'; o: number; x: string } | { t: 'beat' };

export interface CurrentReply {
  r: string;
  p: string;
  from: string;
}

const LIFECYCLE = 'chat:replies';
const HELLO_EVERY_MS = 2000;
// A peer not heard for this long is taken for gone.
const PEER_TTL_MS = 3 * HELLO_EVERY_MS;
const textChannel = (replyId: string) => `chat:reply:${replyId}`;
const currentKey = (conversationId: string) => `chat:current:${conversationId}`;

export const createBus = (store: Store, log: Logger) => {
  /** This instance, so it can tell its own events from the others'. */
  const instance = crypto.randomUUID();
  const warn = (what: string) => (error: unknown) =>
    log.warn({ error: describeError(error) }, `reply bus: ${what} failed`);
  const publish = (channel: string, event: LifecycleEvent | TextEvent) =>
    store.publish(channel, JSON.stringify(event)).catch(warn('publish'));

  /** Other instances, by when they were last heard. */
  const peers = new Map<string, number>();
  let onPeer: () => void = () => {};
  // Not logged when it fails: it is tried again in two seconds, and an outage of the
  // store is logged by whatever needed it.
  const hello = (isNew?: boolean) =>
    store
      .publish(
        LIFECYCLE,
        JSON.stringify(isNew ? { t: 'hello', from: instance, new: true } : { t: 'hello', from: instance }),
      )
      .catch(() => {});
  const greeter = setInterval(() => void hello(), HELLO_EVERY_MS);
  greeter.unref?.();

  return {
    instance,

    /** Whether another instance is up: only then are replies announced. */
    hasPeers: () => {
      const since = Date.now() - PEER_TTL_MS;
      for (const [peer, heard] of peers) {
        if (heard >= since) return true;
        peers.delete(peer);
      }
      return false;
    },

    /**
     * Every reply's lifecycle events from other instances; `peer` runs when another
     * instance is heard for the first time (its replies need announcing from then on).
     */
    listen: async (listener: (event: ReplyEvent) => void, peer: () => void) => {
      onPeer = peer;
      const unsubscribe = await store.subscribe(LIFECYCLE, (message) => {
        const event = JSON.parse(message) as LifecycleEvent;
        if (event.from === instance) return;
        if (event.t === 'hello') {
          const known = (peers.get(event.from) ?? 0) >= Date.now() - PEER_TTL_MS;
          peers.set(event.from, Date.now());
          if (event.new) void hello();
          if (!known) onPeer();
          return;
        }
        listener(event as ReplyEvent);
      });
      void hello(true);
      return () => {
        clearInterval(greeter);
        unsubscribe();
      };
    },

    /** A reply of this instance began: others' sockets of `c` see it, and late sockets can find it. */
    started: (c: string, r: string, p: string, m: string, ttlMs: number) => {
      store.set(currentKey(c), JSON.stringify({ r, p, from: instance }), ttlMs).catch(warn('current'));
      void publish(LIFECYCLE, { t: 'start', c, r, p, m, from: instance });
    },
    /** Keeps the conversation's current-reply key alive while the reply streams. */
    refresh: (c: string, r: string, p: string, ttlMs: number) => {
      store.set(currentKey(c), JSON.stringify({ r, p, from: instance }), ttlMs).catch(warn('current'));
    },
    /**
     * The reply is over: no late socket may find it. Issued before the conversation's
     * lock is released (same connection, so Redis applies it first), so it can never
     * remove the key of a reply that the release let in.
     */
    ending: (c: string) => {
      store.del(currentKey(c)).catch(warn('current'));
    },
    ended: (c: string, r: string, f: string, x: string) =>
      publish(LIFECYCLE, { t: 'end', c, r, f, x, from: instance }),
    stop: (c: string) => publish(LIFECYCLE, { t: 'stop', c, from: instance }),
    updated: (c: string, f: string) => publish(LIFECYCLE, { t: 'updated', c, f, from: instance }),
    removed: (c: string) => publish(LIFECYCLE, { t: 'removed', c, from: instance }),
    gone: (u: string, stopReplies: boolean, tokenId?: string) =>
      publish(LIFECYCLE, {
        t: 'gone',
        u,
        ...(stopReplies && { s: true as const }),
        ...(tokenId !== undefined && { j: tokenId }),
        from: instance,
      }),
    limits: (u: string) => publish(LIFECYCLE, { t: 'limits', u, from: instance }),
    follow: (c: string, r: string) => publish(LIFECYCLE, { t: 'follow', c, r, from: instance }),

    /** The reply streaming in `c` on any instance, if any (null when the store cannot say). */
    current: async (c: string): Promise<CurrentReply | null> => {
      const value = await store.get(currentKey(c)).catch(() => null);
      return value ? (JSON.parse(value) as CurrentReply) : null;
    },

    text: (r: string, o: number, x: string) => publish(textChannel(r), { t: 'text', o, x }),
    beat: (r: string) => publish(textChannel(r), { t: 'beat' }),
    /** The text of reply `r`, from the next snapshot on. */
    read: (r: string, listener: (event: TextEvent) => void) =>
      store.subscribe(textChannel(r), (message) => listener(JSON.parse(message) as TextEvent)),
  };
};

export type Bus = ReturnType<typeof createBus>;

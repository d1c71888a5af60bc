import type { Logger } from '../../lib/logger';
import type { Bus, ReplyEvent } from './bus';
import { FollowedReply } from './follow';
import { CLOSE, encode, MESSAGES } from './protocol';
import type { RememberedBranch, Reply, ReplyAudience } from './reply';
import type { ChatConnection } from './socket';
import { createUserEvents, type UserSettings } from './users';

/** The sockets of one conversation on this instance, and the reply they see. */
class Room {
  readonly sockets = new Set<ChatConnection>();
  /** The reply streaming here. */
  reply: Reply | undefined;
  /** The reply streaming on another instance. */
  followed: FollowedReply | undefined;
  /** `reply` was announced to other instances (see bus.ts): its end is too. */
  announced = false;
  /** Another instance follows `reply`: its text is published too (see bus.ts). */
  mirrored = false;
  beat: Timer | undefined;
  lastPublished = 0;
  /**
   * The current branch as this instance's last reply left it (its newest turns and
   * last message), the settings that reply used, and its lock id; reused when the
   * store's stamp still names that reply (nothing was written or changed since).
   */
  history: RememberedBranch | undefined;
  /** The stored user message `reply` answers (message.created's payload), for a late announcement. */
  createdMessage = '';
  /** The sockets the last `send` found backed up. */
  backedUp: ChatConnection[] = [];
  /** Woken when `followed` is over (see `followedOver`). */
  followEnded: (() => void)[] | undefined;

  constructor(readonly id: string) {}

  /** Sends `frames` to every socket here, together; -1 if any socket is backed up. */
  send(frames: string[], to: Iterable<ChatConnection> = this.sockets): number {
    // Cleared in place: this runs for every batch of deltas.
    this.backedUp.length = 0;
    for (const socket of to) if (socket.sendAll(frames) === -1) this.backedUp.push(socket);
    return this.backedUp.length ? -1 : 1;
  }
}

const LISTEN_RETRY_MS = 3000;

/**
 * How long a socket that takes no more data may hold up the reply for the others of its
 * conversation that read on (a second tab whose network went away): then it is closed.
 */
const SLOW_SOCKET_MS = 5000;

/** A reply's first frames: message.created when it stored a new user message (`message`, else ''), chat.start. */
const startFrames = (message: string, replyId: string, parentId: string) =>
  message
    ? [encode.messageCreated(message), encode.start(replyId, parentId)]
    : [encode.start(replyId, parentId)];

export interface RoomSettings extends UserSettings {
  aiTimeoutMs: number;
  /** Time-to-live of the conversation's current-reply key, renewed while it streams. */
  currentTtlMs: number;
  /** `CHAT_STOP_ON_DISCONNECT`: the sender's socket closing stops its reply. */
  stopOnDisconnect: boolean;
}

/**
 * Every conversation with a socket or a reply on this instance. A reply streaming
 * here sends its frames straight to the room's sockets (no store round trip on a
 * delta's way to its own sender) and, once another instance asks to follow it, also
 * publishes them (bus.ts); a reply streaming elsewhere reaches the room's sockets
 * through the bus. A socket joining mid-reply gets chat.resume with the text so far,
 * then the rest: the text and the sockets it goes to change together, in one turn of
 * the event loop, so nothing is lost or repeated at the seam.
 */
export const createRooms = (bus: Bus, log: Logger, settings: RoomSettings) => {
  const rooms = new Map<string, Room>();
  /**
   * Per conversation, the chat frames being admitted here (read, checked, claimed) before
   * their reply begins, and whether a stop came meanwhile: a `chat.stop` sent right
   * behind its `chat.message` stops that reply as soon as it begins, rather than finding
   * nothing to stop. Only conversations with a frame in admission have an entry.
   */
  const admitting = new Map<string, { frames: number; stop: boolean; userId: string }>();
  /**
   * A stop, as far as this instance goes: the reply streaming here stops ('streaming'),
   * or the one a frame being admitted here is about to begin will, as it begins
   * ('admitting'); undefined when neither is here.
   */
  const stopHere = (conversationId: string): 'streaming' | 'admitting' | undefined => {
    const reply = rooms.get(conversationId)?.reply;
    if (reply) {
      reply.stop('stopped');
      return 'streaming';
    }
    const entry = admitting.get(conversationId);
    if (!entry) return undefined;
    entry.stop = true;
    return 'admitting';
  };
  const beatEveryMs = Math.min(5000, Math.max(100, settings.aiTimeoutMs / 3));
  // A followed reply silent this long is taken for dead: with the sweep's own period on
  // top, its followers hear so within AI_TIMEOUT_SECONDS, yet a live producer beats at
  // least twice in that time.
  const sweepEveryMs = Math.min(1000, beatEveryMs);
  const silentForMs = Math.max(2 * beatEveryMs, settings.aiTimeoutMs - sweepEveryMs);

  const roomOf = (conversationId: string) => {
    let room = rooms.get(conversationId);
    if (!room) {
      room = new Room(conversationId);
      rooms.set(conversationId, room);
    }
    return room;
  };
  const dropIfIdle = (room: Room) => {
    if (!room.sockets.size && !room.reply && !room.followed && rooms.get(room.id) === room)
      rooms.delete(room.id);
  };

  // --- following a reply that streams elsewhere -------------------------------------

  const unfollow = (room: Room) => {
    room.followed?.unsubscribe?.();
    room.followed = undefined;
    const waiting = room.followEnded;
    room.followEnded = undefined;
    for (const wake of waiting ?? []) wake();
    dropIfIdle(room);
  };

  /**
   * The followed reply is lost track of: its followers hear INTERNAL_ERROR, its end
   * (SPEC §11), as they do when its instance dies. Before another reply streams to them,
   * which only a lock that failed open or an end lost with the store lets happen: a
   * socket sees one reply at a time.
   */
  const loseFollowed = (room: Room) => {
    const followed = room.followed;
    if (!followed) return;
    room.send([encode.error('INTERNAL_ERROR', MESSAGES.INTERNAL_ERROR)], followed.followers());
    unfollow(room);
  };

  /** Follows reply `id` of `room`'s conversation: its text channel, then ask for a snapshot. */
  const follow = (room: Room, id: string, parentId: string, told: Iterable<ChatConnection>) => {
    unfollow(room);
    const followed = new FollowedReply(id, parentId, told);
    room.followed = followed;
    bus
      .read(id, (event) => {
        if (room.followed !== followed) return;
        followed.onText(
          event,
          (frame, to) => room.send([frame], to),
          () => {
            log.warn({ replyId: id }, 'reply bus: text arrived with a gap; asking for it again');
            void bus.follow(room.id, id);
          },
        );
      })
      .then(
        (unsubscribe) => {
          if (room.followed !== followed) return unsubscribe();
          followed.unsubscribe = unsubscribe;
          void bus.follow(room.id, id);
        },
        () => {
          // The store is away: this socket sees the reply's end, or nothing, but not its text.
        },
      );
    return followed;
  };

  /**
   * The conversation is deleted: its reply here stops (the provider sees its request
   * closed; storing what arrived then fails, and nothing is kept), and its sockets here
   * are told NO_CONVERSATION and closed with 4004, as a socket asking for it would be.
   */
  const closeDeleted = (room: Room) => {
    room.reply?.stop('stopped');
    const frame = encode.error('NO_CONVERSATION', MESSAGES.NO_CONVERSATION);
    for (const socket of room.sockets) {
      socket.send(frame);
      socket.disconnect(CLOSE.noConversation, 'NO_CONVERSATION');
    }
    unfollow(room);
  };

  const replies = () => [...rooms.values()].flatMap((room) => (room.reply ? [room.reply] : []));
  /** A user deleted or deactivated: their replies here stop, those being admitted as they begin. */
  const stopRepliesOf = (userId: string) => {
    for (const reply of replies()) if (reply.userId === userId) reply.stop('stopped');
    for (const entry of admitting.values()) if (entry.userId === userId) entry.stop = true;
  };
  const users = createUserEvents(bus, settings, stopRepliesOf);

  const onLifecycle = (event: ReplyEvent) => {
    if (event.t === 'gone' || event.t === 'limits') return users.heard(event);
    if (event.t === 'stop') {
      stopHere(event.c);
      return;
    }
    const room = rooms.get(event.c);
    if (!room) return;
    switch (event.t) {
      case 'start':
        // A reply streams here already (the lock failed open while the store was away):
        // the other's frames would interleave with its own on these sockets.
        if (!room.sockets.size || room.reply || room.followed?.id === event.r) return;
        loseFollowed(room);
        room.send(startFrames(event.m, event.r, event.p));
        follow(room, event.r, event.p, room.sockets);
        return;
      case 'updated':
        room.history = undefined;
        room.send([event.f]);
        dropIfIdle(room);
        return;
      case 'end': {
        const followed = room.followed;
        if (followed?.id !== event.r) return;
        room.send(followed.end(event.f, event.x), followed.told);
        unfollow(room);
        return;
      }
      case 'removed':
        closeDeleted(room);
        return;
      case 'follow':
        if (room.reply?.id === event.r) mirror(room, room.reply);
        return;
      default:
        return event satisfies never;
    }
  };

  /** A followed reply silent for the AI timeout: its instance died (SPEC §11). */
  const sweep = setInterval(() => {
    const deadline = Date.now() - silentForMs;
    for (const room of rooms.values()) {
      const followed = room.followed;
      if (!followed || followed.lastHeard > deadline) continue;
      loseFollowed(room);
    }
  }, sweepEveryMs);
  sweep.unref?.();

  // --- a reply streaming here ----------------------------------------------------------

  /** From now on `reply`'s text is published too, starting with a snapshot of what was sent. */
  const mirror = (room: Room, reply: Reply) => {
    void bus.text(reply.id, 0, reply.text);
    room.lastPublished = Date.now();
    if (room.mirrored) return;
    room.mirrored = true;
    room.beat = setInterval(() => {
      if (Date.now() - room.lastPublished >= beatEveryMs) void bus.beat(reply.id);
    }, beatEveryMs);
  };

  /** Tells other instances about `reply`: its start, and from then on its end. */
  const announce = (room: Room, reply: Reply, message: string) => {
    room.announced = true;
    room.createdMessage = message;
    bus.started(room.id, reply.id, reply.parentId, message, settings.currentTtlMs);
  };

  const audienceOf = (room: Room): ReplyAudience => ({
    started: (reply, message) => {
      room.send(startFrames(message ?? '', reply.id, reply.parentId));
      // Alone, there is nobody to tell; a peer that appears later is told then (`peer`).
      if (bus.hasPeers()) announce(room, reply, message ?? '');
      else room.createdMessage = message ?? '';
    },
    deliver: (reply, texts, offset) => {
      const frames = texts.map(encode.delta);
      const sent = room.send(frames);
      if (room.mirrored) {
        void bus.text(reply.id, offset, texts.join(''));
        room.lastPublished = Date.now();
      }
      return sent;
    },
    drained: async () => {
      const behind = [...room.backedUp];
      const waits = behind.map((socket) => socket.drained());
      // Nobody reads: the reply waits for them, the provider with it (SPEC §10).
      if (behind.length >= room.sockets.size) {
        await Promise.all(waits);
        return;
      }
      // Some read on: one that does not holds them up for SLOW_SOCKET_MS at most, then is
      // closed (1013); it reconnects and resumes from the text so far, so it loses nothing.
      const slow = new Set(behind);
      behind.forEach((socket, i) => void waits[i]?.then(() => slow.delete(socket)));
      let timer: Timer | undefined;
      await Promise.race([
        Promise.all(waits),
        new Promise((resolve) => {
          timer = setTimeout(resolve, SLOW_SOCKET_MS);
        }),
      ]);
      clearTimeout(timer);
      for (const socket of slow) {
        // With CHAT_STOP_ON_DISCONNECT the sender's socket closing would stop the reply.
        if (settings.stopOnDisconnect && room.reply?.sender === socket) continue;
        log.info({ conversationId: room.id }, 'closing a socket that stopped reading mid-reply');
        socket.disconnect(CLOSE.tryAgainLater, 'SLOW_CONSUMER');
      }
      // The sender kept (above) may still be behind: wait for it as before.
      await Promise.all(waits);
    },
  });

  // A peer appeared: the replies streaming here are announced now.
  const peer = () => {
    for (const room of rooms.values())
      if (room.reply?.started && !room.announced) announce(room, room.reply, room.createdMessage);
  };
  // Listened to from start-up; while the store is away, tried again every few seconds
  // (a subscription that never succeeded is not renewed by the client on reconnect).
  let unlisten: (() => void) | undefined;
  let closed = false;
  let retry: Timer | undefined;
  const listen = (): Promise<void> =>
    bus.listen(onLifecycle, peer).then(
      (unsubscribe) => {
        if (closed) unsubscribe();
        else unlisten = unsubscribe;
      },
      () => {
        log.warn('reply bus: not listening yet (store unavailable); other instances are not seen meanwhile');
        if (!closed) retry = setTimeout(listen, LISTEN_RETRY_MS);
      },
    );
  const listening = listen();

  return {
    /** Done once the lifecycle channel is listened to, or its first try failed (start-up waits for it). */
    ready: listening,

    /** The room of a conversation, for the reply about to stream in it. */
    room: roomOf,

    /**
     * Resolves once the reply `room` follows from another instance is over here (its end
     * relayed), or after `ms`. A reply admitted here right after that one released the
     * lock waits for its end, which is on its way, so its sockets see that end first.
     */
    followedOver: (room: Room, ms: number) =>
      new Promise<void>((resolve) => {
        if (!room.followed) return resolve();
        const timer = setTimeout(resolve, ms);
        room.followEnded ??= [];
        room.followEnded.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),

    /** A reply of the conversation streams to this instance's sockets (its own, or one followed). */
    streaming: (conversationId: string) => {
      const room = rooms.get(conversationId);
      return Boolean(room?.reply || room?.followed);
    },

    /**
     * A chat frame of `conversationId` (whose owner is `userId`) is being admitted here;
     * `done` once its reply has begun (`begin`) or it was refused.
     */
    admitting: (conversationId: string, userId: string) => {
      const entry = admitting.get(conversationId) ?? { frames: 0, stop: false, userId };
      entry.frames++;
      admitting.set(conversationId, entry);
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        if (--entry.frames === 0 && admitting.get(conversationId) === entry) admitting.delete(conversationId);
      };
    },

    /**
     * `reply` streams in `room` from now on: its frames go to the room's sockets. A stop
     * that came while it was being admitted stops it at once.
     */
    begin: (room: Room, reply: Reply) => {
      loseFollowed(room);
      room.reply = reply;
      const admitted = admitting.get(room.id);
      if (admitted?.stop) {
        admitted.stop = false;
        reply.stop('stopped');
      }
      // A socket is in its room from its auth on; an HTTP reader (ui-stream.ts) from its reply on.
      const sender = reply.sender as ChatConnection;
      if (!sender.closed) room.sockets.add(sender);
      // Gone while its message was being admitted: as if it left now.
      else if (settings.stopOnDisconnect) reply.stop('disconnect');
      const renew = setInterval(
        () => room.announced && bus.refresh(room.id, reply.id, reply.parentId, settings.currentTtlMs),
        settings.currentTtlMs / 3,
      );
      const audience = audienceOf(room);
      return Object.assign(audience, {
        /** Before the lock is released: late sockets no longer find it. */
        ending: () => {
          clearInterval(renew);
          if (room.announced) bus.ending(room.id);
        },
        /** After the lock is released: the final frame, to every socket here and elsewhere. */
        end: (frame: string) => {
          clearInterval(room.beat);
          room.beat = undefined;
          const told = room.announced || room.mirrored;
          room.announced = room.mirrored = false;
          room.createdMessage = '';
          room.reply = undefined;
          if (reply.started) {
            room.send([frame]);
            if (told) void bus.ended(room.id, reply.id, frame, reply.text);
          } else if (room.sockets.has(reply.sender as ChatConnection)) {
            (reply.sender as ChatConnection).send(frame);
          }
          dropIfIdle(room);
        },
      });
    },

    /**
     * A socket authenticated on its conversation: it sees the reply streaming now, if
     * any. True when one streams (the socket is, or will be, resumed).
     */
    join: async (socket: ChatConnection): Promise<boolean> => {
      const room = roomOf(socket.conversationId);
      room.sockets.add(socket);
      const reply = room.reply;
      if (reply) {
        if (reply.started) socket.send(encode.resume(reply.id, reply.parentId, reply.text));
        return reply.started;
      }
      if (room.followed) {
        room.followed.join(socket);
        return true;
      }
      // Alone, no reply can stream elsewhere.
      if (!bus.hasPeers()) return false;
      const current = await bus.current(room.id);
      if (!current || current.from === bus.instance || socket.closed) return false;
      if (room.reply || room.followed) return false; // learnt meanwhile
      follow(room, current.r, current.p, []).join(socket);
      return true;
    },

    leave: (socket: ChatConnection) => {
      const room = rooms.get(socket.conversationId);
      if (!room?.sockets.delete(socket)) return;
      room.followed?.leave(socket);
      if (settings.stopOnDisconnect && room.reply?.sender === socket) room.reply.stop('disconnect');
      if (!room.sockets.size && room.followed) unfollow(room);
      dropIfIdle(room);
    },

    /**
     * Stops the reply streaming in a conversation, here or on another instance, or
     * the one a frame being admitted here is about to begin; false when there is none.
     */
    stop: async (conversationId: string) => {
      const here = stopHere(conversationId);
      if (here === 'streaming') return true;
      // A frame in admission here is stopped once its reply begins; a reply streaming
      // elsewhere (that frame is then refused) is stopped there. Alone, none can.
      if (!bus.hasPeers()) return here === 'admitting';
      const current = await bus.current(conversationId);
      if (!current) return here === 'admitting';
      await bus.stop(conversationId);
      return true;
    },

    /**
     * The conversation changed (SPEC §12): `conversation` (its JSON) goes to every
     * socket of it, here and on other instances, and no remembered branch is reused.
     */
    updated: (conversationId: string, conversation: string) => {
      const frame = encode.conversationUpdated(conversation);
      const room = rooms.get(conversationId);
      if (room) {
        room.history = undefined;
        room.send([frame]);
      }
      if (bus.hasPeers()) void bus.updated(conversationId, frame);
    },

    /** What reaches a user on every instance (users.ts). */
    limitsChanged: users.limitsChanged,
    signOut: users.signOut,
    shutOut: users.shutOut,

    /** The replies streaming here (shutdown stops those still running after the grace period). */
    replies,

    /** The conversation is deleted: its reply stops and its sockets close, here and on every other instance. */
    removed: (conversationId: string) => {
      const room = rooms.get(conversationId);
      if (room) closeDeleted(room);
      if (bus.hasPeers()) void bus.removed(conversationId);
    },

    /** Every socket of a conversation here (a reply that finds it deleted closes them all). */
    socketsOf: (conversationId: string) => [...(rooms.get(conversationId)?.sockets ?? [])],

    close: async () => {
      clearInterval(sweep);
      for (const room of rooms.values()) {
        clearInterval(room.beat);
        room.followed?.unsubscribe?.();
      }
      rooms.clear();
      closed = true;
      clearTimeout(retry);
      await listening;
      unlisten?.();
    },
  };
};

export type Rooms = ReturnType<typeof createRooms>;

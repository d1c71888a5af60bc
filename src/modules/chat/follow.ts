import type { TextEvent } from './bus';
import { encode } from './protocol';
import type { ChatConnection } from './socket';

/**
 * A reply streaming on another instance, as this instance's sockets follow it: which
 * sockets were told it exists, which wait for its text so far, and that text, put
 * together from the producer's snapshot and its offset-tagged deltas (bus.ts) so that
 * each socket sees every delta once. No I/O: rooms.ts subscribes and sends.
 */
export class FollowedReply {
  /** The text so far, always a prefix of the reply's; unknown until the producer's snapshot arrives. */
  private text: string | undefined;
  /**
   * When a new snapshot was last asked for, text having gone missing (a publish lost
   * while the store was away); 0 while nothing is missing.
   */
  private askedAt = 0;
  /** Sockets told the reply exists (by chat.start or chat.resume): they get its frames. */
  readonly told: Set<ChatConnection>;
  /** Sockets that joined mid-reply, waiting for the text so far. */
  private readonly waiting = new Set<ChatConnection>();
  lastHeard = Date.now();
  unsubscribe: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly parentId: string,
    told: Iterable<ChatConnection>,
  ) {
    this.told = new Set(told);
  }

  /** A socket of the conversation authenticated: resumed now, or once the text is known. */
  join(socket: ChatConnection) {
    if (this.text === undefined) this.waiting.add(socket);
    else {
      socket.send(encode.resume(this.id, this.parentId, this.text));
      this.told.add(socket);
    }
  }

  /** Every socket following it: told, or still waiting for the text so far. */
  followers(): ChatConnection[] {
    return [...this.told, ...this.waiting];
  }

  leave(socket: ChatConnection) {
    this.told.delete(socket);
    this.waiting.delete(socket);
  }

  /**
   * An event of the reply's text channel: new text goes to the told sockets through
   * `send`, and waiting sockets are resumed (after, so none sees the snapshot twice).
   * Text that starts past what we have means some went missing: it is not sent (the
   * sockets would show a hole, and every offset after it would be off), and `gap` is
   * called to ask the producer for a new snapshot, which fills the hole (at most once a
   * second, should that request be lost too; the end carries the whole text anyway).
   */
  onText(event: TextEvent, send: (frame: string, to: Set<ChatConnection>) => void, gap: () => void) {
    this.lastHeard = Date.now();
    if (event.t === 'beat') return;
    const { o, x } = event;
    if (this.text === undefined) {
      if (o !== 0) return; // before our snapshot: the snapshot covers it
      this.text = x;
      if (x) send(encode.delta(x), this.told);
      const resume = encode.resume(this.id, this.parentId, x);
      for (const socket of this.waiting) {
        socket.send(resume);
        this.told.add(socket);
      }
      this.waiting.clear();
      return;
    }
    const have = this.text.length;
    if (o + x.length <= have) return; // a snapshot for another follower, or a repeat
    if (o > have) {
      if (Date.now() - this.askedAt >= 1000) {
        this.askedAt = Date.now();
        gap();
      }
      return;
    }
    this.askedAt = 0;
    const part = x.slice(have - o);
    this.text += part;
    send(encode.delta(part), this.told);
  }

  /**
   * The reply ended with `frame`, its whole text `whole`: what the text channel had not
   * brought yet (all of it, when the reply was over before its snapshot could be sent),
   * then the end, for the told sockets.
   */
  end(frame: string, whole: string): string[] {
    const have = this.text ?? '';
    const rest = whole.startsWith(have) ? whole.slice(have.length) : '';
    return rest ? [encode.delta(rest), frame] : [frame];
  }
}

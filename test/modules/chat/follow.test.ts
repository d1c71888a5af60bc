import { describe, expect, test } from 'bun:test';
import type { TextEvent } from '../../../src/modules/chat/bus';
import { FollowedReply } from '../../../src/modules/chat/follow';
import { ChatConnection } from '../../../src/modules/chat/socket';

/** A follower of reply `r`, one socket told of it; what it sends, as the socket's text. */
const following = () => {
  const socket = new ChatConnection(crypto.randomUUID());
  const followed = new FollowedReply('r', 'p', [socket]);
  let shown = '';
  let gaps = 0;
  const hear = (event: TextEvent) =>
    followed.onText(
      event,
      (frame) => {
        shown += JSON.parse(frame).content;
      },
      () => gaps++,
    );
  return { followed, hear, shown: () => shown, gaps: () => gaps };
};

const text = (o: number, x: string): TextEvent => ({ t: 'text', o, x });

describe('a followed reply (another instance streams it)', () => {
  test('its text is shown once, in order, from the snapshot and the deltas after it', () => {
    const f = following();
    f.hear(text(2, 'cd')); // before the snapshot: the snapshot covers it
    f.hear(text(0, 'abcd'));
    f.hear(text(2, 'cd')); // a repeat
    f.hear(text(4, 'ef'));
    f.hear(text(0, 'abcdef')); // a snapshot for another follower
    expect(f.shown()).toBe('abcdef');
    expect(f.gaps()).toBe(0);
  });

  test('text lost on the way (the store was away) leaves no hole: it asks once for a snapshot, which fills it', () => {
    const f = following();
    f.hear(text(0, 'ab'));
    f.hear(text(2, 'cd'));
    // 'ef' and 'gh' were published while the store was away; what comes next starts past them.
    f.hear(text(6, 'gh'));
    f.hear(text(8, 'ij'));
    expect(f.shown()).toBe('abcd');
    expect(f.gaps()).toBe(1);
    f.hear(text(0, 'abcdefghij'));
    f.hear(text(10, 'k'));
    expect(f.shown()).toBe('abcdefghijk');
    // The end brings what is still missing, then the final frame.
    const frames = f.followed.end('DONE', 'abcdefghijklm');
    expect(frames).toEqual([JSON.stringify({ type: 'chat.stream', content: 'lm', done: false }), 'DONE']);
  });

  test('when the snapshot does not come, the end still makes the text whole', () => {
    const f = following();
    f.hear(text(0, 'ab'));
    f.hear(text(5, 'fg'));
    expect(f.shown()).toBe('ab');
    const [rest] = f.followed.end('DONE', 'abcdefgh');
    expect(JSON.parse(rest as string).content).toBe('cdefgh');
  });
});

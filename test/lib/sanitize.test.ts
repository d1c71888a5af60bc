import { describe, expect, test } from 'bun:test';
import { cleanContent, codePointLength } from '../../src/lib/sanitize';
import { CLEANING_EXAMPLES } from '../support/spec-examples';

describe('cleanContent (SPEC §6.2)', () => {
  test.each([
    ...CLEANING_EXAMPLES,
    ['<style>body{display:none}</style>text', 'text'],
    ['<SCRIPT type="x">evil()</SCRIPT>ok', 'ok'],
    ['<img src=x onerror=alert(1)>pic', 'pic'],
    ['<a href="javascript:alert(1)">link</a>', 'link'],
    ['<!-- hidden -->shown', 'shown'],
    ['1 < 2 > 0', '1 < 2 > 0'],
    ['if (a<b) {}', 'if (a<b) {}'],
    ['&lt;b&gt; stays as typed', '&lt;b&gt; stays as typed'],
    ['tab\there\nnewline', 'tab\there\nnewline'],
    ['bell\u0007 and escape\u001b[31m', 'bell and escape[31m'],
    ['windows\r\nline', 'windows\nline'],
    ['<script>never closed', ''],
    ['日本語 <i>テキスト</i>', '日本語 テキスト'],
    ["Robert'); DROP TABLE users;--", "Robert'); DROP TABLE users;--"],
  ])('%j → %j', (input, expected) => {
    expect(cleanContent(input)).toBe(expected);
  });
});

describe('codePointLength', () => {
  test('counts code points, not UTF-16 units', () => {
    expect(codePointLength('abc')).toBe(3);
    expect(codePointLength('😀😀')).toBe(2);
    expect('😀😀'.length).toBe(4);
  });
});

describe('cleanContent keeps text that only looks like markup', () => {
  test.each([
    ['a<b', 'a<b'],
    ['i <3 you', 'i <3 you'],
    ['List<String> items', 'List<String> items'],
    ['<not-a-tag>', '<not-a-tag>'],
    ['<<>>', '<<>>'],
    ['<scr<script>ipt>alert(1)</script>', '<scr'],
    ['<b>bold</b><B>BOLD</B>', 'boldBOLD'],
    ['</div>closing only', 'closing only'],
    ['<br/>line', 'line'],
  ])('%j → %j', (input, expected) => {
    expect(cleanContent(input)).toBe(expected);
  });
});

/** SPEC §6.2's table of content cleaning examples: what is sent → what is stored. */
export const CLEANING_EXAMPLES: [string, string][] = [
  ['<script>alert(1)</script>hi', 'hi'],
  ['<b>bold</b> move', 'bold move'],
  ['a < b && c > d', 'a < b && c > d'],
  ['x <= 5', 'x <= 5'],
  ['  hello\u0000  ', 'hello'],
];

import { Parser } from 'htmlparser2';

// Elements whose content is code or styling, not text the user meant to send.
const DROPPED_ELEMENTS = new Set(['script', 'style', 'noscript', 'template', 'iframe', 'object']);
// Control characters other than \t (09) and \n (0a); \r is folded into \n first.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

// Names of HTML (and embedded SVG/MathML) elements. A `<` followed by anything
// else (`a<b)`, `x <= 5`, `<3`) is ordinary text, not markup.
const ELEMENTS =
  'a|abbr|address|area|article|aside|audio|b|base|bdi|bdo|blockquote|body|br|button|canvas|caption|cite|code|col|colgroup|data|datalist|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|form|frame|frameset|h[1-6]|head|header|hgroup|hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|main|map|mark|marquee|math|menu|meta|meter|nav|noscript|object|ol|optgroup|option|output|p|param|picture|pre|progress|q|rp|rt|ruby|s|samp|script|search|section|select|slot|small|source|span|strong|style|sub|summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|track|u|ul|var|video|wbr|xmp|plaintext|center|applet|basefont|big|blink|tt|strike|animate|circle|defs|ellipse|foreignobject|g|line|path|polygon|polyline|rect|set|text|use';
const NOT_MARKUP = new RegExp(`<(?!/?(?:${ELEMENTS})(?=[\\s/>])|!|\\?)`, 'gi');
// Stands in for a protected `<` while parsing; control characters never survive
// cleaning, so it cannot collide with anything the user meant.
const PROTECTED_LT = '\u0001';

/**
 * Turns user input into plain text (SPEC §6.2): tags go, their text stays;
 * script/style content goes too; control characters except \n and \t go;
 * surrounding whitespace is trimmed. Text that merely contains `<` or `>` is
 * left alone (only `<` opening a real element, comment or declaration is
 * markup), and entities are not decoded, so what the user typed is what is stored.
 */
export const cleanContent = (input: string): string => {
  if (!input.includes('<')) return stripControls(input);
  const source = input.replaceAll(PROTECTED_LT, '').replace(NOT_MARKUP, PROTECTED_LT);
  let text = '';
  let dropDepth = 0;
  const parser = new Parser(
    {
      onopentagname: (name) => {
        if (DROPPED_ELEMENTS.has(name)) dropDepth++;
      },
      onclosetag: (name) => {
        if (DROPPED_ELEMENTS.has(name) && dropDepth > 0) dropDepth--;
      },
      ontext: (chunk) => {
        if (dropDepth === 0) text += chunk;
      },
    },
    { decodeEntities: false, lowerCaseTags: true, recognizeSelfClosing: true },
  );
  parser.write(source);
  parser.end();
  return stripControls(text.replaceAll(PROTECTED_LT, '<'));
};

// A lone surrogate becomes U+FFFD, as the database would store it, so what the
// server sends back (message.created) is what a later read returns.
const stripControls = (text: string) =>
  text.replace(/\r\n?/g, '\n').replace(CONTROL_CHARACTERS, '').toWellFormed().trim();

/** Length in code points, as SPEC §6.1 counts characters. */
export const codePointLength = (text: string) => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

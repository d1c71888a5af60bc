import { Parser } from 'htmlparser2';

// Elements whose content is code or styling, not text the user meant to send.
const DROPPED_ELEMENTS = new Set(['script', 'style', 'noscript', 'template', 'iframe', 'object']);
// Control characters other than \t (09) and \n (0a); \r is folded into \n first.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Turns user input into plain text (SPEC §6.2): tags go, their text stays;
 * script/style content goes too; control characters except \n and \t go;
 * surrounding whitespace is trimmed. Text that merely contains `<` or `>` is
 * left alone because an HTML parser only treats `<letter` as a tag, and
 * entities are not decoded, so what the user typed is what is stored.
 */
export const cleanContent = (input: string): string => {
  if (!input.includes('<')) return stripControls(input);
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
  parser.write(input);
  parser.end();
  return stripControls(text);
};

const stripControls = (text: string) => text.replace(/\r\n?/g, '\n').replace(CONTROL_CHARACTERS, '').trim();

/** Length in code points, as SPEC §6.1 counts characters. */
export const codePointLength = (text: string) => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

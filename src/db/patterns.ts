/**
 * `text` as a LIKE pattern that matches it literally anywhere: `%`, `_` and `\` in it
 * are plain characters (the default escape character is `\`).
 */
export const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Prints the README's table of environment variables, from the schema in src/config.ts. */
import { declared, VARIABLES } from '../src/config';

/** The README's variable table: one row per variable, its meaning and its default. */
export const variableTable = () => {
  const rows = Object.keys(VARIABLES.properties).map((name) => {
    const schema = declared(name);
    const fallback =
      schema.shown ??
      (schema.default === undefined || schema.default === '' ? '—' : `\`${String(schema.default)}\``);
    return [`\`${name}\``, schema.description ?? '', fallback];
  });
  const all = [['Variable', 'Meaning', 'Default'], ...rows];
  const widths = [0, 1, 2].map((i) => Math.max(...all.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(all[0] as string[]), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
};

if (import.meta.main) console.log(variableTable());

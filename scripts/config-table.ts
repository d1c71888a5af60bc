/** Prints the README's table of environment variables, from the schema in src/config.ts. */
import { variableTable } from '../src/config';

console.log(variableTable());

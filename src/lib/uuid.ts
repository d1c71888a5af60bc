import { FormatRegistry } from '@sinclair/typebox';

/** A UUID as PostgreSQL reads it: 8-4-4-4-12 hexadecimal digits, in either case. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string) => UUID.test(value);

// `format: 'uuid'` in every schema of ours means exactly that. Elysia's own format also
// takes a `urn:uuid:` prefix, which the database refuses to read (such an id in a path
// or a body was a 500). TypeBox's registry is read when a value is checked, so this
// holds for every schema, whenever it was compiled.
FormatRegistry.Set('uuid', isUuid);

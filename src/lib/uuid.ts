/** A UUID as PostgreSQL reads it: 8-4-4-4-12 hexadecimal digits, in either case. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether `value` is such a UUID. It is also what `format: 'uuid'` means in every
 * schema (src/lib/docs.ts registers it): Elysia's own format takes a `urn:uuid:`
 * prefix too, which the database refuses to read (such an id was a 500).
 */
export const isUuid = (value: string) => UUID.test(value);

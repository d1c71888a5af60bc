import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

/**
 * An email address as Django's EmailValidator takes one: a dot-atom or quoted local
 * part; a domain of dotted labels (or `localhost`, or an IP literal in brackets), and a
 * domain in another script is checked in its ASCII (punycode) form, so that
 * `zoe@exämple.com` or `li@例子.中国` registers (stored as `normalizeEmail` gives it).
 */

const DOT_ATOM = /^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*$/i;
// Django's quoted-string without its control characters: printable ASCII, `"` and `\`
// escaped.
const QUOTED = /^"([!#-[\]-~]|\\[ -~])*"$/;
const DOMAIN = /^((?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+)(?:[A-Z0-9-]{2,63}(?<!-))$/i;
const LITERAL = /^\[([A-F0-9:.]+)\]$/i;

const MAX_LENGTH = 320;

const validDomain = (domain: string) => {
  if (domain === 'localhost' || DOMAIN.test(domain)) return true;
  const literal = LITERAL.exec(domain);
  return literal?.[1] !== undefined && isIP(literal[1]) !== 0;
};

export const isEmail = (value: string) => {
  if (value.length > MAX_LENGTH) return false;
  const at = value.lastIndexOf('@');
  if (at <= 0) return false;
  const user = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!DOT_ATOM.test(user) && !QUOTED.test(user)) return false;
  if (validDomain(domain)) return true;
  // A domain in another script: its ASCII form ('' when it has none).
  const ascii = domainToASCII(domain);
  return ascii !== '' && ascii !== domain && validDomain(ascii);
};

/**
 * As Django's `normalize_email` stores one: the domain lower-cased (it names the same
 * host in any case), the local part as typed. Unique addresses are compared by the
 * database's lower(), which on every backend folds at least ASCII, and a local part is ASCII.
 */
export const normalizeEmail = (value: string) => {
  const at = value.lastIndexOf('@');
  return at < 0 ? value : `${value.slice(0, at)}@${value.slice(at + 1).toLowerCase()}`;
};

// HTTP Basic credentials (RFC 7617) as sent in the `authorization` metadata of a call.

export interface BasicCredentials {
  username: string;
  password: string;
}

/** Bounds the work spent on a header before any lookup. */
export const MAX_AUTHORIZATION_LENGTH = 4096;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `Basic base64(username:password)` → the credentials, or undefined when the value is not that
 * (other scheme, bad base64, bad UTF-8, no colon, empty username, control characters). The
 * password may contain colons: the username ends at the first one.
 */
export function parseBasicAuthorization(value: string): BasicCredentials | undefined {
  if (typeof value !== "string" || value.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const m = /^basic +(\S+) *$/i.exec(value.trim());
  const token = m?.[1];
  if (token === undefined || !BASE64.test(token) || token.length % 4 !== 0) return undefined;
  let decoded: string;
  try {
    decoded = UTF8.decode(Buffer.from(token, "base64"));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(username)) return undefined;
  return { username, password };
}

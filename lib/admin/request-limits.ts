// What the admin API accepts of a request before any handler sees it (README "Admin API"):
// the body's size, the JSON's nesting depth, the path's percent-encoding. Pure functions. The admin
// API applies them to every request, so the local HTTP server and the Lambda behind the HTTP API
// (functions/admin.ts) refuse the same requests with the same answers; locally, nodeHttpRoutes also
// stops reading a body at MAX_BODY_BYTES.

/**
 * The largest request body, in bytes: room for a stanza of the server's largest size (65,536 bytes)
 * JSON-escaped, far above any tenant item. A larger body is answered 413 without being read.
 */
export const MAX_BODY_BYTES = 256 * 1024;

/**
 * The deepest JSON nesting accepted in a body: DynamoDB stores documents up to 32 levels deep, and
 * no admin body needs more; deeper is answered 400 before it is parsed.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * How deep `text` nests arrays and objects, counted without parsing (brackets inside strings are
 * text), stopping as soon as it passes `limit`: a body of 256 KiB of '[' never reaches JSON.parse.
 */
export function jsonNestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > limit) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}

/** A path segment decoded (RFC 3986 §2.1), or undefined when its percent-encoding is broken ('%', '%E0%A4%A'). */
export function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

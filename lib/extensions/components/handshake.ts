// XEP-0114 §3 the handshake: the component proves it knows the shared secret by sending the
// lower-case hex SHA-1 of the stream id concatenated with the secret.
import { createHash, timingSafeEqual } from 'node:crypto';

export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1').update(streamId + secret, 'utf8').digest('hex');
}

/** Whether a handshake's text proves `secret` for this stream; compared in constant time, case-insensitively (hex). */
export function handshakeMatches(streamId: string, secret: string, text: string): boolean {
  const want = Buffer.from(handshakeDigest(streamId, secret), 'utf8');
  const got = Buffer.from(text.trim().toLowerCase(), 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}

// For unit tests of parsers that refuse with a StanzaError (RFC 6120 §8.3).
import { StanzaError } from '../../lib/xmpp/errors.ts';

/** The condition `fn` refuses with, or undefined if it accepts; anything other than a StanzaError is rethrown. */
export function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof StanzaError) return err.condition;
    throw err;
  }
  return undefined;
}

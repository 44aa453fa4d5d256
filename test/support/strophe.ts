// Strophe.js (5.x) under Node, for BOSH. Its Node entry installs the DOM it needs (@xmldom/xmldom) but
// not XMLHttpRequest, which its BOSH transport uses: xhr2 is that API over node:http. xhr2 has no
// responseXML, and Strophe's fallback for that (parsing responseText) parses but then returns nothing
// (Request.getResponse in strophe.js 5.0.0), so the shim adds responseXML, parsed with xmldom as a
// browser would. Import Strophe from here, so the global exists before its first request.
import { DOMParser } from '@xmldom/xmldom';
import XHR from 'xhr2';

class XMLHttpRequestWithXml extends (XHR as unknown as { new (): { responseText: string; readyState: number } }) {
  get responseXML(): unknown {
    if (this.readyState !== 4 || !this.responseText) return null;
    return new DOMParser().parseFromString(this.responseText, 'text/xml');
  }
}

(globalThis as { XMLHttpRequest?: unknown }).XMLHttpRequest ??= XMLHttpRequestWithXml;

export { $msg, $pres, Strophe } from 'strophe.js';

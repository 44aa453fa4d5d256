// XEP-0313 Message Archive Management queries as pure functions: archive ids (time-ordered, so a page
// is one DynamoDB Query on the sort key), the query's data form (§4.1, with the extended fields of
// §4.1.3), XEP-0059 Result Set Management requests (§2.1 forward, §2.5 backward paging) and the
// page that answers them. No I/O here: store.ts reads, index.ts talks XMPP.
import { StanzaError } from '../../xmpp/errors.ts';
import { tryParseJID } from '../../xmpp/jid.ts';
import { archiveIdTime, firstIdAt, isArchiveId, lastIdAt } from '../../xmpp/stanza-id.ts';
import { type Element, xml } from '../../xmpp/xml.ts';

export { NS_SID, archiveIdTime, firstIdAt, isArchiveId, lastIdAt, newArchiveId } from '../../xmpp/stanza-id.ts';

export const NS_MAM = 'urn:xmpp:mam:2';
export const NS_MAM_EXTENDED = 'urn:xmpp:mam:2#extended';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
export const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_DATA = 'jabber:x:data';

/** The most results one page returns, whatever `max` asks (XEP-0059 §2.1: the responder may return fewer). */
export const MAX_PAGE = 100;
/** A page's size when the client names none. */
export const DEFAULT_PAGE = 50;

/** What the query's form (§4.1) and its extended fields (§4.1.3, urn:xmpp:mam:2#extended) ask for. */
export interface ArchiveFilter {
  /** A bare JID matches messages with any resource of it; a full JID only that resource (§4.1.1). */
  with?: string;
  start?: number;
  end?: number;
  afterId?: string;
  beforeId?: string;
  ids?: string[];
}

/** XEP-0059 §2: `before` '' asks for the last page. */
export interface RsmRequest {
  max?: number;
  after?: string;
  before?: string;
}

const values = (field: Element) => field.getChildren('value').map((v) => v.getText().trim());

/** XEP-0082 DateTime → ms; anything else is a bad request. */
function dateTime(text: string, field: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new StanzaError('bad-request', `${field} is not an XEP-0082 DateTime`);
  return ms;
}

/**
 * §4.1: the <x xmlns='jabber:x:data' type='submit'/> of a query, FORM_TYPE urn:xmpp:mam:2. A field
 * the server does not recognise is feature-not-implemented (§4.1.5); no form means no filter.
 */
export function parseQueryForm(x: Element | undefined): ArchiveFilter {
  if (!x) return {};
  const out: ArchiveFilter = {};
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var as string | undefined;
    const [value] = values(field);
    if (name === 'FORM_TYPE') {
      if (value !== NS_MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS_MAM}`);
      continue;
    }
    if (value === undefined || value === '') continue;
    switch (name) {
      case 'with': {
        const jid = tryParseJID(value);
        if (!jid) throw new StanzaError('jid-malformed', 'with is not a JID');
        out.with = jid.toString();
        break;
      }
      case 'start':
        out.start = dateTime(value, 'start');
        break;
      case 'end':
        out.end = dateTime(value, 'end');
        break;
      case 'after-id':
        out.afterId = value;
        break;
      case 'before-id':
        out.beforeId = value;
        break;
      case 'ids':
        out.ids = values(field).filter((v) => v !== '');
        break;
      default:
        throw new StanzaError('feature-not-implemented', `unknown field ${name}`);
    }
  }
  return out;
}

/** XEP-0059 §2.1, §2.5: <set xmlns='http://jabber.org/protocol/rsm'><max/><after/>|<before/></set>. */
export function parseRsm(set: Element | undefined): RsmRequest {
  if (!set) return {};
  const out: RsmRequest = {};
  const max = set.getChild('max');
  if (max) {
    const text = max.getText().trim();
    if (!/^\d+$/.test(text)) throw new StanzaError('bad-request', 'max is not a non-negative integer');
    out.max = Number(text);
  }
  const after = set.getChild('after');
  if (after) out.after = after.getText().trim();
  const before = set.getChild('before');
  if (before) out.before = before.getText().trim();
  if (set.getChild('index')) throw new StanzaError('feature-not-implemented', 'RSM index is not supported'); // §2.6 is optional
  return out;
}

/**
 * How to read one page: a sort-key range, a direction, how many matching items to collect, and the
 * ids the client named that must exist (`anchors`; an unknown one is item-not-found, §4.1.3, §4.3.2).
 */
export interface PagePlan {
  /** Inclusive sort-key bounds. */
  from: string;
  to: string;
  /** forward: oldest first (after-paging, the first page); backward: newest first (before-paging). */
  forward: boolean;
  /** The items to return; one more is read to learn whether the page is the last one. */
  max: number;
  /** Ids that bound the range exclusively: they must exist in the archive, and are not returned. */
  anchors: string[];
  with?: string;
  ids?: string[];
}

/** Combines the form, RSM and the retention bound (items before `oldest` are expired) into a plan. */
export function planPage(filter: ArchiveFilter, rsm: RsmRequest, oldest: number): PagePlan {
  const anchors: string[] = [];
  for (const id of [filter.afterId, filter.beforeId, rsm.after, rsm.before || undefined]) {
    if (id === undefined) continue;
    // An id we never give out cannot be in the archive (§4.1.3, §4.3.2: item-not-found).
    if (!isArchiveId(id)) throw new StanzaError('item-not-found', `${id} is not in the archive`);
    anchors.push(id);
  }
  const lows = [firstIdAt(Math.max(oldest, filter.start ?? 0)), filter.afterId, rsm.after].filter((v): v is string => v !== undefined);
  const highs = [filter.end !== undefined ? lastIdAt(filter.end) : 'g', filter.beforeId, rsm.before || undefined].filter((v): v is string => v !== undefined);
  const from = lows.reduce((a, b) => (a > b ? a : b));
  const to = highs.reduce((a, b) => (a < b ? a : b));
  return {
    from,
    to,
    forward: rsm.before === undefined,
    max: Math.min(rsm.max ?? DEFAULT_PAGE, MAX_PAGE),
    anchors,
    ...(filter.with ? { with: filter.with } : {}),
    ...(filter.ids ? { ids: filter.ids } : {}),
  };
}

/** What the archive keeps of one message, as far as paging needs it. */
export interface ArchivedRef {
  id: string;
  /** The other party: bare JID, and full JID where it had one. */
  peer: string;
  peerFull?: string;
}

/** §4.1.1: a bare `with` matches any resource of that JID; a full one only itself. */
export function matchesWith(item: ArchivedRef, withJid: string | undefined): boolean {
  if (!withJid) return true;
  return withJid.includes('/') ? item.peerFull === withJid : item.peer === withJid;
}

/** Does an item fall inside the plan's range, its anchors excluded? */
export function inRange(plan: PagePlan, id: string): boolean {
  return id >= plan.from && id <= plan.to && !plan.anchors.includes(id);
}

/**
 * One page from the items read in the plan's direction (at most max + 1 matching ones, anchors
 * possibly among them): the page in chronological order (§4.2, §4.3.3: oldest first, for the last
 * page too), and whether it was not limited by max: the last matching item in the query's
 * direction is on it (§4.3.2 `complete`).
 */
export function takePage<T extends ArchivedRef>(plan: PagePlan, read: T[]): { page: T[]; complete: boolean } {
  const matching = read.filter((i) => inRange(plan, i.id) && matchesWith(i, plan.with) && (!plan.ids || plan.ids.includes(i.id)));
  const page = matching.slice(0, plan.max);
  if (!plan.forward) page.reverse();
  return { page, complete: matching.length <= plan.max };
}

/** XEP-0059 §2.1 answer: <first/> and <last/> of the page; an empty page gets an empty set (§2.7). */
export function rsmAnswer(page: { id: string }[]): Element {
  const set = xml('set', { xmlns: NS_RSM });
  if (page.length) {
    set.cnode(xml('first', {}, page[0].id));
    set.cnode(xml('last', {}, page[page.length - 1].id));
  }
  return set;
}

/** §4.1.5: the query form a client gets with an IQ get of the query element. */
export function queryForm(): Element {
  const field = (v: string, type: string, label: string) => xml('field', { var: v, type, label });
  return xml(
    'query',
    { xmlns: NS_MAM },
    xml(
      'x',
      { xmlns: NS_DATA, type: 'form' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS_MAM)),
      field('with', 'jid-single', 'With'),
      field('start', 'text-single', 'Start'),
      field('end', 'text-single', 'End'),
      field('after-id', 'text-single', 'After id'),
      field('before-id', 'text-single', 'Before id'),
      // §4.1.5: 'ids' is list-multi, open to any value (XEP-0122), without the list of ids.
      xml('field', { var: 'ids', type: 'list-multi', label: 'Ids' }, xml('validate', { xmlns: 'http://jabber.org/protocol/xdata-validate', datatype: 'xs:string' }, xml('open'))),
    ),
  );
}

/** XEP-0082 DateTime of an archive id's time. */
export function stampOf(id: string): string {
  return new Date(archiveIdTime(id)).toISOString();
}

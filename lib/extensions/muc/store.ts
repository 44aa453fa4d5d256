// Multi-User Chat rooms (XEP-0045) in the single table. One item holds a room's whole live state —
// configuration, affiliations, subject and the occupants with the connections they joined from — so a
// groupchat message costs one GetItem whatever the number of occupants, and its fan-out needs no session
// reads (docs/architecture.md "Cost is a feature"). Every change is one conditional UpdateItem on a map path, so
// two joins at once cannot take the same nickname and nobody's change overwrites another's.
//
//   pk                        sk                what
//   room#<tenant>#<room>      room              RoomRecord: config, affiliations, subject, occupants
//   room#<tenant>#<room>      h#<archive id>    one message of discussion history and the room archive (expires: ttl)
//   rooms#<tenant>            <room>            RoomSummary: the tenant's rooms, for disco#items and the admin API
//   mucowned#<bare JID>       <tenant>#<room>   a room the user created (limits.roomsPerUser)
//
// The tenant is in every key. UpdateItem returns the item before or after the change at no extra
// capacity, so a leave or a presence change needs no read before its broadcast.
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TTL_ATTRIBUTE, isConditionFailure, partitionItems, ttlFrom } from '../../store/dynamo.ts';
import { deletePartition } from '../../store/partition.ts';
import { firstIdAt, newArchiveId } from '../../xmpp/stanza-id.ts';

export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';
export type Whois = 'moderators' | 'anyone';
export type AllowPm = 'anyone' | 'participants' | 'moderators' | 'none';

/** A room's configuration: the muc#roomconfig form (XEP-0045 §10.2, §15.5.3) as values. */
export interface RoomConfig {
  /** muc#roomconfig_roomname */
  name: string;
  /** muc#roomconfig_roomdesc */
  description: string;
  /** muc#roomconfig_lang */
  lang: string;
  /** muc#roomconfig_persistentroom: false = destroyed when the last occupant leaves. */
  persistent: boolean;
  /** muc#roomconfig_publicroom: false = hidden (not in disco#items). */
  public: boolean;
  /** muc#roomconfig_passwordprotectedroom */
  passwordProtected: boolean;
  /** muc#roomconfig_roomsecret */
  password: string;
  /** muc#roomconfig_membersonly */
  membersOnly: boolean;
  /** muc#roomconfig_moderatedroom: unaffiliated occupants enter as visitors. */
  moderated: boolean;
  /** muc#roomconfig_maxusers; 0 = the service's maximum. */
  maxUsers: number;
  /** muc#roomconfig_whois: who sees occupants' real JIDs (anyone = non-anonymous). */
  whois: Whois;
  /** muc#roomconfig_changesubject: participants may change the subject. */
  changeSubject: boolean;
  /** muc#roomconfig_allowinvites: members may invite to a members-only room (and the invitee becomes a member). */
  allowInvites: boolean;
  /** muc#roomconfig_allowpm: who may send private messages. */
  allowPm: AllowPm;
  /** muc#roomconfig_enablelogging: occupants are told (status 170) that the discussion is logged. */
  logging: boolean;
  /** muc#maxhistoryfetch: the most history messages a new occupant gets. */
  historyFetch: number;
  /**
   * muc#roomconfig_enablearchiving: the room's history is its message archive (XEP-0313), and its
   * messages carry the room's stanza-id. Unset: on for persistent rooms (roomArchives).
   */
  archiving?: boolean;
}

/** Whether a room keeps a message archive: as configured, else when it is persistent. */
export const roomArchives = (config: Pick<RoomConfig, 'archiving' | 'persistent'>): boolean => config.archiving ?? config.persistent;

export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, 'none'>;
  /** Reserved nickname (members, admins, owners). */
  nick?: string;
  reason?: string;
}

/** One connection an occupant is in the room from (XEP-0045 §7.2.6: several resources may share a nick). */
export interface OccupantSession {
  /** The real full JID. */
  jid: string;
  connectionId: string;
  endpoint: string;
  /** The connection's hard end of life; reads ignore sessions past it. */
  expiresAt: number;
  joinedAt: number;
  /** The occupant's presence as last sent from this session, without MUC extensions, as XML. */
  presence: string;
  /**
   * The session's stream data (Session.streamData: XEP-0198's stream id), kept with its connection so
   * the room's posts to it carry it (OutboundTarget.streamData): stream management counts them in
   * whichever process sends them (docs/architecture.md "Stream management").
   */
  streamData?: Record<string, unknown>;
}

export interface Occupant {
  nick: string;
  /** The real bare JID. */
  bare: string;
  role: Role;
  /** By real full JID. */
  sessions: Record<string, OccupantSession>;
}

export interface Subject {
  text: string;
  /** Nick of the occupant who set it; absent when set by the service. */
  nick?: string;
  /** That occupant's real bare JID, for the occupant id the subject carries (XEP-0421 §4); absent in subjects set before. */
  bare?: string;
  at: number;
}

export interface RoomRecord {
  /** The tenant. */
  domain: string;
  /** The room ID (local part of the room JID). */
  id: string;
  createdAt: number;
  /** The bare JID that created the room, if a user did. */
  creator?: string;
  /** Created but not yet configured (XEP-0045 §10.1.1): only owners may enter. */
  locked: boolean;
  config: RoomConfig;
  /** By bare JID. */
  affiliations: Record<string, AffiliationEntry>;
  /** By nickname. */
  occupants: Record<string, Occupant>;
  subject?: Subject;
}

export interface RoomSummary {
  id: string;
  name: string;
  public: boolean;
  persistent: boolean;
  locked: boolean;
  createdAt: number;
}

export interface HistoryEntry {
  at: number;
  /** The reflected message from the occupant JID, without `to`, as XML. */
  xml: string;
}

const STATE = 'room';
const roomPk = (domain: string, id: string) => `room#${domain}#${id}`;
const stateKey = (domain: string, id: string) => ({ pk: roomPk(domain, id), sk: STATE });
const indexPk = (domain: string) => `rooms#${domain}`;
const ownedPk = (bare: string) => `mucowned#${bare}`;

function toRecord(item: Record<string, unknown> | undefined): RoomRecord | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as unknown as RoomRecord;
}

/** Sessions past their connection's end of life are left out (a $disconnect may never come). */
export function liveRoom(room: RoomRecord, now = Date.now()): RoomRecord {
  const occupants: Record<string, Occupant> = {};
  for (const [nick, o] of Object.entries(room.occupants ?? {})) {
    const sessions = Object.fromEntries(Object.entries(o.sessions ?? {}).filter(([, s]) => s.expiresAt > now));
    if (Object.keys(sessions).length) occupants[nick] = { ...o, sessions };
  }
  return { ...room, occupants, affiliations: room.affiliations ?? {} };
}

export class RoomStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The room with its live occupants: one strongly consistent GetItem. */
  async get(domain: string, id: string): Promise<RoomRecord | undefined> {
    const res = await this.db.send(new GetCommand({ TableName: this.table, Key: stateKey(domain, id), ConsistentRead: true }));
    const room = toRecord(res.Item);
    return room && liveRoom(room);
  }

  /** Creates the room (with its first occupant, if any) unless it exists; false if it does. Writes its summary too. */
  async create(room: RoomRecord): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({ TableName: this.table, Item: { ...stateKey(room.domain, room.id), ...room }, ConditionExpression: 'attribute_not_exists(pk)' }),
      );
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
    await this.putSummary(room);
    return true;
  }

  async putSummary(room: RoomRecord): Promise<void> {
    const summary: RoomSummary = { id: room.id, name: room.config.name, public: room.config.public, persistent: room.config.persistent, locked: room.locked, createdAt: room.createdAt };
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: indexPk(room.domain), sk: room.id, ...summary } }));
  }

  /** The tenant's rooms, from its index partition (one Query per 1 MB). */
  async list(domain: string): Promise<RoomSummary[]> {
    return (await partitionItems(this.db, this.table, indexPk(domain))).map(({ pk: _pk, sk: _sk, ...s }) => s as unknown as RoomSummary);
  }

  /**
   * One conditional UpdateItem on the room item, returning the item after (or before) the change.
   * `attribute_exists(pk)` always holds: an update never re-creates a destroyed room.
   */
  private async update(
    domain: string,
    id: string,
    expr: { update: string; condition?: string; names: Record<string, string>; values?: Record<string, unknown> },
    returnValues: 'ALL_NEW' | 'ALL_OLD' = 'ALL_NEW',
  ): Promise<RoomRecord | undefined> {
    try {
      const res = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: stateKey(domain, id),
          UpdateExpression: expr.update,
          ConditionExpression: expr.condition ? `attribute_exists(pk) AND ${expr.condition}` : 'attribute_exists(pk)',
          ExpressionAttributeNames: expr.names,
          ...(expr.values && Object.keys(expr.values).length ? { ExpressionAttributeValues: expr.values } : {}),
          ReturnValues: returnValues,
        }),
      );
      return toRecord(res.Attributes);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Adds a new occupant under a nickname nobody holds; with `max`, only while fewer than `max`
   * nicknames are in the room. Undefined if the nick was taken or the room filled meanwhile.
   */
  async addOccupant(domain: string, id: string, occupant: Occupant, max?: number): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n = :occ',
      condition: `attribute_not_exists(#o.#n)${max !== undefined ? ' AND size(#o) < :max' : ''}`,
      names: { '#o': 'occupants', '#n': occupant.nick },
      values: { ':occ': occupant, ...(max !== undefined ? { ':max': max } : {}) },
    });
    return room && liveRoom(room);
  }

  /** Adds (or replaces) one session of an existing occupant, if that nick still belongs to `bare`. */
  async addSession(domain: string, id: string, nick: string, bare: string, session: OccupantSession): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n.#s.#j = :s',
      condition: '#o.#n.#b = :b',
      names: { '#o': 'occupants', '#n': nick, '#s': 'sessions', '#j': session.jid, '#b': 'bare' },
      values: { ':s': session, ':b': bare },
    });
    return room && liveRoom(room);
  }

  /**
   * Removes one session (the one of `connectionId`), and the occupant with it if it was its last.
   * Returns the room before and after, or undefined if that session was not there (already gone).
   */
  async removeSession(domain: string, id: string, nick: string, jid: string, connectionId: string): Promise<{ before: RoomRecord; after: RoomRecord; occupantLeft: boolean } | undefined> {
    const names = { '#o': 'occupants', '#n': nick, '#s': 'sessions', '#j': jid, '#c': 'connectionId' };
    // Usually the occupant's only session: one write removes the occupant.
    let before = await this.update(
      domain,
      id,
      { update: 'REMOVE #o.#n', condition: '#o.#n.#s.#j.#c = :c AND size(#o.#n.#s) = :one', names, values: { ':c': connectionId, ':one': 1 } },
      'ALL_OLD',
    );
    let occupantLeft = true;
    if (!before) {
      before = await this.update(domain, id, { update: 'REMOVE #o.#n.#s.#j', condition: '#o.#n.#s.#j.#c = :c', names, values: { ':c': connectionId } }, 'ALL_OLD');
      if (!before) return undefined;
      occupantLeft = false;
    }
    const after = structuredClone(before);
    if (occupantLeft) delete after.occupants[nick];
    else delete after.occupants[nick].sessions[jid];
    const live = liveRoom(after);
    // `before` as stored: the leaving session may be past its expiry (that is why it leaves).
    return { before: { ...before, affiliations: before.affiliations ?? {} }, after: live, occupantLeft: occupantLeft || !live.occupants[nick] };
  }

  /** Removes an occupant with all its sessions (kick, ban, destroy), if `nick` still belongs to `bare`. */
  async removeOccupant(domain: string, id: string, nick: string, bare: string): Promise<{ before: RoomRecord; after: RoomRecord } | undefined> {
    const before = await this.update(domain, id, { update: 'REMOVE #o.#n', condition: '#o.#n.#b = :b', names: { '#o': 'occupants', '#n': nick, '#b': 'bare' }, values: { ':b': bare } }, 'ALL_OLD');
    if (!before) return undefined;
    const after = structuredClone(before);
    delete after.occupants[nick];
    return { before: { ...before, affiliations: before.affiliations ?? {} }, after: liveRoom(after) };
  }

  /** Moves an occupant (all its sessions) to a nickname nobody holds (XEP-0045 §7.6). */
  async renameOccupant(domain: string, id: string, from: string, occupant: Occupant): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#to = :occ REMOVE #o.#from',
      condition: '#o.#from.#b = :b AND attribute_not_exists(#o.#to)',
      names: { '#o': 'occupants', '#from': from, '#to': occupant.nick, '#b': 'bare' },
      values: { ':occ': occupant, ':b': occupant.bare },
    });
    return room && liveRoom(room);
  }

  /**
   * Moves one session of an occupant to another connection (XEP-0198 resumption: same full JID, new
   * connection), if it is still on `from`.
   */
  async moveSession(
    domain: string,
    id: string,
    nick: string,
    jid: string,
    from: string,
    to: { connectionId: string; endpoint: string; expiresAt: number; streamData?: Record<string, unknown> },
  ): Promise<boolean> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n.#s.#j.#c = :to, #o.#n.#s.#j.#e = :ep, #o.#n.#s.#j.#x = :exp, #o.#n.#s.#j.#d = :sd',
      condition: '#o.#n.#s.#j.#c = :from',
      names: { '#o': 'occupants', '#n': nick, '#s': 'sessions', '#j': jid, '#c': 'connectionId', '#e': 'endpoint', '#x': 'expiresAt', '#d': 'streamData' },
      values: { ':to': to.connectionId, ':ep': to.endpoint, ':exp': to.expiresAt, ':from': from, ':sd': to.streamData ?? {} },
    });
    return !!room;
  }

  /** Stores a session's new stream data (XEP-0198 <enable/> after joining), if that connection is still in the room under `nick`. */
  async setStreamData(domain: string, id: string, nick: string, jid: string, connectionId: string, streamData: Record<string, unknown>): Promise<boolean> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n.#s.#j.#d = :sd',
      condition: '#o.#n.#s.#j.#c = :c',
      names: { '#o': 'occupants', '#n': nick, '#s': 'sessions', '#j': jid, '#c': 'connectionId', '#d': 'streamData' },
      values: { ':sd': streamData, ':c': connectionId },
    });
    return !!room;
  }

  /** Stores a session's new presence, if that session is still in the room under `nick`. */
  async setPresence(domain: string, id: string, nick: string, jid: string, connectionId: string, presence: string): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n.#s.#j.#p = :p',
      condition: '#o.#n.#s.#j.#c = :c',
      names: { '#o': 'occupants', '#n': nick, '#s': 'sessions', '#j': jid, '#c': 'connectionId', '#p': 'presence' },
      values: { ':p': presence, ':c': connectionId },
    });
    return room && liveRoom(room);
  }

  async setRole(domain: string, id: string, nick: string, bare: string, role: Role): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, {
      update: 'SET #o.#n.#r = :r',
      condition: '#o.#n.#b = :b',
      names: { '#o': 'occupants', '#n': nick, '#r': 'role', '#b': 'bare' },
      values: { ':r': role, ':b': bare },
    });
    return room && liveRoom(room);
  }

  /** Sets (entry) or removes (null) several affiliations at once; roles of occupants may change with them. */
  async setAffiliations(domain: string, id: string, changes: Record<string, AffiliationEntry | null>, roles: { nick: string; bare: string; role: Role }[] = []): Promise<RoomRecord | undefined> {
    const names: Record<string, string> = { '#a': 'affiliations' };
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    const conditions: string[] = [];
    Object.entries(changes).forEach(([bare, entry], i) => {
      names[`#j${i}`] = bare;
      if (entry) {
        values[`:a${i}`] = entry;
        sets.push(`#a.#j${i} = :a${i}`);
      } else removes.push(`#a.#j${i}`);
    });
    if (roles.length) names['#o'] = 'occupants';
    roles.forEach((r, i) => {
      Object.assign(names, { [`#n${i}`]: r.nick, '#r': 'role', '#b': 'bare' });
      Object.assign(values, { [`:r${i}`]: r.role, [`:b${i}`]: r.bare });
      sets.push(`#o.#n${i}.#r = :r${i}`);
      conditions.push(`#o.#n${i}.#b = :b${i}`);
    });
    const room = await this.update(domain, id, {
      update: [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' '),
      condition: conditions.join(' AND ') || undefined,
      names,
      values,
    });
    return room && liveRoom(room);
  }

  /** Replaces the configuration (and unlocks the room). */
  async setConfig(domain: string, id: string, config: RoomConfig): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, { update: 'SET #c = :c, #l = :f', names: { '#c': 'config', '#l': 'locked' }, values: { ':c': config, ':f': false } });
    if (room) await this.putSummary(room);
    return room && liveRoom(room);
  }

  async setSubject(domain: string, id: string, subject: Subject): Promise<RoomRecord | undefined> {
    const room = await this.update(domain, id, { update: 'SET #s = :s', names: { '#s': 'subject' }, values: { ':s': subject } });
    return room && liveRoom(room);
  }

  /** Deletes the room if it is still empty (a temporary room whose last occupant left); false if someone came in. */
  async removeIfEmpty(domain: string, id: string, creator?: string): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteCommand({ TableName: this.table, Key: stateKey(domain, id), ConditionExpression: 'size(#o) = :zero', ExpressionAttributeNames: { '#o': 'occupants' }, ExpressionAttributeValues: { ':zero': 0 } }),
      );
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
    await this.removeRest(domain, id, creator);
    return true;
  }

  /** Deletes the room, its history, its summary and its creator's count entry. */
  async remove(room: Pick<RoomRecord, 'domain' | 'id' | 'creator'>): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: stateKey(room.domain, room.id) }));
    await this.removeRest(room.domain, room.id, room.creator);
  }

  private async removeRest(domain: string, id: string, creator?: string): Promise<void> {
    await deletePartition(this.db, this.table, roomPk(domain, id));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: indexPk(domain), sk: id } }));
    if (creator) await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: ownedPk(creator), sk: `${domain}#${id}` } }));
  }

  /** Deletes every room of a tenant (its purge). */
  async removeAll(domain: string): Promise<number> {
    const rooms = await this.list(domain);
    for (const summary of rooms) {
      const res = await this.db.send(new GetCommand({ TableName: this.table, Key: stateKey(domain, summary.id), ProjectionExpression: 'creator' }));
      await this.remove({ domain, id: summary.id, creator: res.Item?.creator as string | undefined });
    }
    return rooms.length;
  }

  // ---- discussion history -------------------------------------------------------------------------

  /**
   * One PutItem per message; items expire after `retentionMs` (TTL in AWS; reads skip them). The sort
   * key holds the message's archive id (time-ordered, lib/xmpp/stanza-id.ts): history is the room's
   * archive too (XEP-0313), and the id is the stanza-id the room put on the message.
   */
  async addHistory(domain: string, id: string, xml: string, retentionMs: number, now = Date.now(), archiveId = newArchiveId(now)): Promise<void> {
    const expiresAt = now + retentionMs;
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: roomPk(domain, id), sk: `h#${archiveId}`, at: now, xml, expiresAt, [TTL_ATTRIBUTE]: ttlFrom(expiresAt) },
      }),
    );
  }

  /** History items with archive ids in [from, to], in one direction: one Query (the room archive's pages). */
  async historyRange(domain: string, id: string, from: string, to: string, forward: boolean, limit: number, start?: Record<string, unknown>) {
    const res = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': roomPk(domain, id), ':from': `h#${from}`, ':to': `h#${to}` },
        ScanIndexForward: forward,
        Limit: limit,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const items = (res.Items ?? []).map((i) => ({ id: (i.sk as string).slice(2), at: i.at as number, xml: i.xml as string, expiresAt: i.expiresAt as number }));
    return { items, next: res.LastEvaluatedKey };
  }

  /** The newest `limit` messages (since `since` ms, if given), oldest first: one Query. */
  async history(domain: string, id: string, limit: number, since = 0, now = Date.now()): Promise<HistoryEntry[]> {
    if (limit <= 0) return [];
    const res = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': roomPk(domain, id), ':from': `h#${firstIdAt(since)}`, ':to': 'h#~' },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (res.Items ?? [])
      .filter((i) => (i.expiresAt as number) > now)
      .map((i) => ({ at: i.at as number, xml: i.xml as string }))
      .reverse();
  }

  // ---- rooms per creator (limits.roomsPerUser) ------------------------------------------------------

  /** Rooms `bare` created in `domain`'s service (a federated user's rooms elsewhere do not count here). */
  async countCreated(bare: string, domain: string): Promise<number> {
    const res = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :tenant)',
        ExpressionAttributeValues: { ':pk': ownedPk(bare), ':tenant': `${domain}#` },
        Select: 'COUNT',
      }),
    );
    return res.Count ?? 0;
  }

  async addCreated(bare: string, domain: string, id: string): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: { pk: ownedPk(bare), sk: `${domain}#${id}` } }));
  }
}

/**
 * TwiML documents as the emulator runs them: parsed with fast-xml-parser (order preserved,
 * entities decoded, no DTD or external entities), then turned into a flat list of the verbs
 * the emulator executes. Attribute values are kept as Twilio documents them; relative URLs are
 * resolved against the document's own URL.
 *
 *   <Start><Stream/></Start>    one-way stream, TwiML goes on at once
 *   <Stop><Stream name/></Stop>  stops a one-way stream
 *   <Connect><Stream/></Connect> two-way stream; the call waits until the socket closes
 *   <Dial><Conference/></Dial>  joins a conference; the call waits until it leaves it
 *   <Say> <Play> <Pause>         timed audio
 *   <Hangup/> <Redirect>         end the call / fetch another document
 *
 * Other verbs are reported and skipped (the emulator does not run them).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { HttpMethod, StreamTrack } from './types.js';

/** TwiML passed inline (`Twiml` parameter) may be at most 4000 characters (Twilio error 32018). */
export const MAX_INLINE_TWIML = 4000;
/** A fetched document is refused beyond this size (Twilio's documented TwiML limit is 64 kB). */
export const MAX_TWIML_BYTES = 64 * 1024;
/** `<Parameter>` name and value together must stay under 500 characters (docs/twilio-protocol.md §4.3). */
export const MAX_PARAMETER_CHARS = 500;
/** More verbs than this in one document are refused (bounded work per document). */
export const MAX_VERBS = 1000;

/** Where a call's next document comes from: a URL to fetch (with extra request parameters), or the document itself. */
export type TwimlSource = { url: string; method: HttpMethod; params?: Record<string, string> } | { twiml: string };

export interface StreamNoun {
  url: string;
  name: string | null;
  track: string;
  statusCallback: string | null;
  statusCallbackMethod: HttpMethod;
  parameters: Record<string, string>;
}

export interface ConferenceNoun {
  friendlyName: string;
  statusCallback: string | null;
  statusCallbackMethod: HttpMethod;
  statusCallbackEvent: string | null;
  startConferenceOnEnter: boolean;
  endConferenceOnExit: boolean;
  muted: boolean;
  label: string | null;
}

export type Verb =
  | { verb: 'Start'; stream: StreamNoun }
  | { verb: 'Stop'; name: string | null }
  | { verb: 'Connect'; stream: StreamNoun; action: string | null; method: HttpMethod }
  | { verb: 'Dial'; conference: ConferenceNoun; action: string | null; method: HttpMethod }
  | { verb: 'Say'; text: string; loop: number }
  | { verb: 'Play'; url: string; loop: number }
  | { verb: 'Pause'; seconds: number }
  | { verb: 'Hangup' }
  | { verb: 'Redirect'; url: string; method: HttpMethod }
  /** A verb the emulator does not run; `detail` says what was skipped. */
  | { verb: 'Skipped'; detail: string };

/** A document Twilio could not run: `code` is Twilio's (12100 parse failure, 12200 schema). */
export class TwimlError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'TwimlError';
    this.code = code;
  }
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** Parses a TwiML document fetched from (or inlined for) `baseUrl`. */
export function parseTwiml(xml: string, baseUrl: string | null): Verb[] {
  // No DTDs: TwiML needs none, and entity definitions are a memory hazard.
  if (/<!DOCTYPE/i.test(xml)) throw new TwimlError(12100, 'Document parse failure: DOCTYPE is not allowed');
  if (XMLValidator.validate(xml) !== true) throw new TwimlError(12100, 'Document parse failure: not well-formed XML');
  const roots = (parser.parse(xml) as Node[]).filter((n) => tagOf(n) !== null);
  if (roots.length !== 1 || tagOf(roots[0]!) !== 'Response') throw new TwimlError(12100, 'Document parse failure: the root element must be <Response>');
  const verbs: Verb[] = [];
  for (const node of childrenOf(roots[0]!)) {
    const tag = tagOf(node);
    if (tag === null) continue;
    if (verbs.length >= MAX_VERBS) throw new TwimlError(12200, `more than ${MAX_VERBS} verbs`);
    verbs.push(...verb(tag, node, baseUrl));
  }
  return verbs;
}

function verb(tag: string, node: Node, base: string | null): Verb[] {
  const a = attrs(node);
  switch (tag) {
    case 'Start':
    case 'Stop': {
      const streams = nouns(node, 'Stream');
      if (streams.length === 0) return [{ verb: 'Skipped', detail: `<${tag}> without <Stream> (other nouns are not emulated)` }];
      return streams.map((s): Verb => (tag === 'Start' ? { verb: 'Start', stream: streamNoun(s, base) } : { verb: 'Stop', name: attrs(s).name ?? null }));
    }
    case 'Connect': {
      const streams = nouns(node, 'Stream');
      if (streams.length !== 1) return [{ verb: 'Skipped', detail: '<Connect> without exactly one <Stream> (other nouns are not emulated)' }];
      return [{ verb: 'Connect', stream: streamNoun(streams[0]!, base), action: url(a.action, base), method: method(a.method) }];
    }
    case 'Dial': {
      const confs = nouns(node, 'Conference');
      if (confs.length !== 1) return [{ verb: 'Skipped', detail: '<Dial> without a <Conference> (numbers, clients and SIP are not emulated)' }];
      return [{ verb: 'Dial', conference: conferenceNoun(confs[0]!, base), action: url(a.action, base), method: method(a.method) }];
    }
    case 'Say':
      return [{ verb: 'Say', text: textOf(node), loop: count(a.loop, 1) }];
    case 'Play': {
      const target = url(textOf(node), base);
      if (target === null) return [{ verb: 'Skipped', detail: '<Play> without a URL' }];
      return [{ verb: 'Play', url: target, loop: count(a.loop, 1) }];
    }
    case 'Pause':
      return [{ verb: 'Pause', seconds: count(a.length, 1) }];
    case 'Hangup':
      return [{ verb: 'Hangup' }];
    case 'Redirect': {
      const target = url(textOf(node), base);
      if (target === null) throw new TwimlError(12200, '<Redirect> without a URL');
      return [{ verb: 'Redirect', url: target, method: method(a.method) }];
    }
    default:
      return [{ verb: 'Skipped', detail: `<${tag}> is not emulated` }];
  }
}

function streamNoun(node: Node, base: string | null): StreamNoun {
  const a = attrs(node);
  if (a.url === undefined || a.url === '') throw new TwimlError(12200, '<Stream> needs a url');
  const parameters: Record<string, string> = {};
  for (const p of childrenOf(node)) {
    if (tagOf(p) !== 'Parameter') continue;
    const pa = attrs(p);
    if (pa.name === undefined) continue;
    const value = pa.value ?? '';
    if (pa.name.length + value.length >= MAX_PARAMETER_CHARS) throw new TwimlError(12200, `<Parameter ${pa.name}>: name and value must be under ${MAX_PARAMETER_CHARS} characters`);
    parameters[pa.name] = value;
  }
  return {
    // A relative stream URL is resolved on the document's host with the WebSocket scheme.
    url: resolveStreamUrl(a.url, base),
    name: a.name ?? null,
    track: a.track ?? 'inbound_track',
    statusCallback: url(a.statusCallback, base),
    statusCallbackMethod: method(a.statusCallbackMethod),
    parameters,
  };
}

function conferenceNoun(node: Node, base: string | null): ConferenceNoun {
  const a = attrs(node);
  const friendlyName = textOf(node);
  if (friendlyName === '') throw new TwimlError(12200, '<Conference> needs a name');
  return {
    friendlyName,
    statusCallback: url(a.statusCallback, base),
    statusCallbackMethod: method(a.statusCallbackMethod),
    statusCallbackEvent: a.statusCallbackEvent ?? null,
    startConferenceOnEnter: a.startConferenceOnEnter !== 'false',
    endConferenceOnExit: a.endConferenceOnExit === 'true',
    muted: a.muted === 'true',
    label: a.participantLabel ?? null,
  };
}

/** The stream tracks TwiML accepts (docs/twilio-protocol.md §9). */
export function streamTrack(value: string): StreamTrack | null {
  return value === 'inbound_track' || value === 'outbound_track' || value === 'both_tracks' ? value : null;
}

function resolveStreamUrl(value: string, base: string | null): string {
  if (/^wss?:\/\//i.test(value) || base === null) return value;
  try {
    const u = new URL(value, base);
    u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
    return u.toString();
  } catch {
    return value;
  }
}

function url(value: string | undefined, base: string | null): string | null {
  if (value === undefined || value === '') return null;
  try {
    return new URL(value, base ?? undefined).toString();
  } catch {
    throw new TwimlError(12200, `not a URL: ${value}`);
  }
}

function method(value: string | undefined): HttpMethod {
  return value?.toUpperCase() === 'GET' ? 'GET' : 'POST';
}

/** A non-negative integer attribute (`loop`, `length`); bad values fall back. */
function count(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 10_000 ? n : fallback;
}

function tagOf(node: Node): string | null {
  for (const key of Object.keys(node)) if (key !== ':@' && key !== '#text') return key;
  return null;
}

function childrenOf(node: Node): Node[] {
  const tag = tagOf(node);
  return tag === null ? [] : ((node[tag] as Node[] | undefined) ?? []);
}

function attrs(node: Node): Record<string, string | undefined> {
  return (node[':@'] as Record<string, string> | undefined) ?? {};
}

function textOf(node: Node): string {
  return childrenOf(node)
    .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : ''))
    .join('')
    .trim();
}

/** Children of a verb named `noun`. */
function nouns(node: Node, noun: string): Node[] {
  return childrenOf(node).filter((c) => tagOf(c) === noun);
}

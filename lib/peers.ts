// The network file, peers.json: the interval, the ordered server list (the alpha rotation), the number
// of dishonest servers tolerated, and the genesis balances. Every validation error names the field and the
// problem. The network id is the hash of everything two servers must agree on.

import { toHex } from "./_bytes.ts";
import { AddressError, parseAccountId } from "./address.ts";
import { CoinError } from "./errors.ts";
import { sha256Hex } from "./hash.ts";
import { JsonError, parseJson } from "./json.ts";
import type { Timing } from "./frames.ts";
import { MAX_AMOUNT } from "./tx.ts";

/** Limits on a network file. */
export const MAX_PEERS_FILE_BYTES = 16 * 1024 * 1024;
export const MAX_SERVERS = 64;
export const MIN_INTERVAL_MS = 200;
export const MAX_INTERVAL_MS = 3_600_000;
/** The skew when peers.json gives none. */
export const DEFAULT_SKEW_MS = 5_000;
/** Latest accepted "start" (unix seconds): year 2286; keeps frame numbers far below 2^53. */
export const MAX_START_S = 9_999_999_999;

/** One server of the network. */
export interface Peer {
  readonly index: number;
  readonly name: string;
  readonly key: Uint8Array;
  readonly keyHex: string;
  readonly host: string;
  readonly port: number;
}

/** A parsed, validated peers.json. */
export interface Network {
  readonly intervalMs: number;
  /**
   * The network's first frame (`"start"` in peers.json, rounded up to a frame boundary): the genesis is the
   * state before it, and a server that lost its votes never signs for a frame that ended before it started.
   */
  readonly startFrame: number;
  readonly timing: Timing;
  readonly servers: readonly Peer[];
  /** How many dishonest servers the network is configured to tolerate (`"dishonest"`, default 0). */
  readonly dishonest: number;
  /**
   * Votes that decide: floor((n + dishonest) / 2) + 1. With no dishonest server tolerated it is the
   * strict majority (2 of 3, 3 of 5); any two quorums share at least dishonest + 1 servers.
   */
  readonly quorum: number;
  /**
   * The network id: SHA-256 (hex) of the server keys in order, the genesis, the timing and `dishonest`
   * (docs/protocol.md, 7). Addresses and names are not in it.
   */
  readonly id: string;
  /** Genesis balances, account hex (lowercase) to amount. */
  readonly genesis: readonly [string, number][];
  readonly supply: number;
}

/** The JSON shape written by `coin devnet` and by hand. */
export interface NetworkJson {
  /** Unix seconds at which the first frame begins. */
  start: number;
  interval: number;
  skew?: number;
  blackout?: number;
  dishonest?: number;
  servers: { name?: string; key: string; host: string; port: number }[];
  genesis: Record<string, number>;
}

function fail(source: string, problem: string): never {
  throw new CoinError(`Invalid network file "${source}": ${problem}`);
}

function seconds(source: string, field: string, value: unknown, minMs: number, maxMs: number): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    fail(source, `"${field}" must be a number of seconds`);
  }
  const ms = Math.round(value * 1000);
  if (ms < minMs || ms > maxMs) {
    fail(source, `"${field}" must be from ${minMs / 1000} to ${maxMs / 1000} seconds`);
  }
  return ms;
}

const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const IPV4 =
  /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/**
 * Why `host` is not a host name (RFC 1123), an IPv4 address or an IPv6 address (without brackets), or
 * undefined when it is one. The port has a field of its own, and a URL is not a host.
 */
export function checkHost(host: string): string | undefined {
  if (host.length === 0 || host.length > 253) return "must be a host name or address of 1 to 253 characters";
  if (host.includes("://")) return `is a URL: give only the host name or address (the port goes in "port")`;
  if (/^\[.*\](:\d+)?$/.test(host)) return "has brackets: write an IPv6 address without them";
  if (/^[^:]+:\d+$/.test(host)) {
    return `holds a port: give only the host name or address (the port goes in "port")`;
  }
  if (host.includes(":")) {
    // IPv6: hex groups and colons, "::" at most once, an IPv4 tail allowed.
    const ok = /^[0-9A-Fa-f:.]+$/.test(host) && host.split("::").length <= 2 && host.split(":").length >= 3;
    return ok ? undefined : "is not a host name or address";
  }
  if (IPV4.test(host)) return undefined;
  if (/^[0-9.]+$/.test(host)) return "is not an IPv4 address (four numbers from 0 to 255)";
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (labels.every((label) => HOST_LABEL.test(label))) return undefined;
  return "is not a host name or address (letters, digits, hyphens and dots)";
}

/** The account id written at `what`: 64 hex digits or an address; a mistyped address fails with its reason. */
function accountIn(source: string, what: string, text: string): Uint8Array | undefined {
  try {
    return parseAccountId(text);
  } catch (err) {
    if (!(err instanceof AddressError)) throw err;
    fail(source, `${what} is not a valid address: ${err.message}`);
  }
}

/** Validates parsed JSON; `source` names the file in errors. */
export function parseNetwork(json: unknown, source = "peers.json"): Network {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(source, "it is not a JSON object");
  }
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!["start", "interval", "skew", "blackout", "dishonest", "servers", "genesis"].includes(key)) {
      fail(source, `unknown field "${key}"`);
    }
  }
  const intervalMs = seconds(source, "interval", obj.interval, MIN_INTERVAL_MS, MAX_INTERVAL_MS);
  if (
    typeof obj.start !== "number" || !Number.isFinite(obj.start) || obj.start < 0 || obj.start > MAX_START_S
  ) {
    fail(
      source,
      `"start" must be the unix time in seconds at which the network's first frame begins ` +
        `(got ${JSON.stringify(obj.start)}); coin devnet writes one`,
    );
  }
  const startFrame = Math.ceil(Math.round(obj.start * 1000) / intervalMs);
  const skewMs = obj.skew === undefined ? DEFAULT_SKEW_MS : seconds(source, "skew", obj.skew, 0, 600_000);
  const blackoutMs = obj.blackout === undefined
    ? Math.round(intervalMs / 10)
    : seconds(source, "blackout", obj.blackout, 0, intervalMs / 2);

  if (!Array.isArray(obj.servers) || obj.servers.length === 0) {
    fail(source, `"servers" must be a non-empty list`);
  }
  if (obj.servers.length > MAX_SERVERS) fail(source, `"servers" has more than ${MAX_SERVERS} entries`);
  const seen = new Set<string>();
  const addresses = new Set<string>();
  const names = new Map<string, number>();
  const servers: Peer[] = obj.servers.map((raw: unknown, index: number) => {
    const at = `servers[${index}]`;
    if (typeof raw !== "object" || raw === null) fail(source, `${at} must be an object`);
    const s = raw as Record<string, unknown>;
    const key = typeof s.key === "string" ? accountIn(source, `${at}.key`, s.key) : undefined;
    if (key === undefined) fail(source, `${at}.key must be 64 hex digits or a coin1… address`);
    const keyHex = toHex(key);
    if (seen.has(keyHex)) fail(source, `${at}.key duplicates an earlier server's key`);
    seen.add(keyHex);
    if (typeof s.host !== "string") fail(source, `${at}.host must be a host name or address`);
    const hostProblem = checkHost(s.host);
    if (hostProblem !== undefined) fail(source, `${at}.host ${JSON.stringify(s.host)} ${hostProblem}`);
    if (typeof s.port !== "number" || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      fail(source, `${at}.port must be an integer from 1 to 65535 (got ${JSON.stringify(s.port)})`);
    }
    if (addresses.has(`${s.host}:${s.port}`)) fail(source, `${at} repeats the address ${s.host}:${s.port}`);
    addresses.add(`${s.host}:${s.port}`);
    if (s.name !== undefined && (typeof s.name !== "string" || s.name.length > 64)) {
      fail(source, `${at}.name must be a string of at most 64 characters`);
    }
    const name = typeof s.name === "string" && s.name !== "" ? s.name : keyHex.slice(0, 8);
    const sameName = names.get(name);
    if (sameName !== undefined) {
      fail(source, `${at}.name "${name}" is already the name of servers[${sameName}]`);
    }
    names.set(name, index);
    return { index, name, key, keyHex, host: s.host, port: s.port };
  });

  if (typeof obj.genesis !== "object" || obj.genesis === null || Array.isArray(obj.genesis)) {
    fail(source, `"genesis" must be an object of account hex to amount`);
  }
  const genesis: [string, number][] = [];
  const accounts = new Set<string>();
  let supply = 0;
  for (const [account, amount] of Object.entries(obj.genesis as Record<string, unknown>)) {
    const key = accountIn(source, `genesis account "${account}"`, account);
    if (key === undefined) {
      fail(source, `genesis account "${account}" is not 64 hex digits or a coin1… address`);
    }
    const hex = toHex(key);
    if (accounts.has(hex)) fail(source, `genesis account ${hex} appears twice`);
    accounts.add(hex);
    if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount <= 0) {
      fail(source, `genesis amount of ${hex} must be a whole number from 1 to 2^53 - 1`);
    }
    supply += amount;
    if (supply > MAX_AMOUNT) fail(source, "genesis amounts sum to more than 2^53 - 1");
    genesis.push([hex, amount]);
  }
  const n = servers.length;
  const dishonest = obj.dishonest === undefined ? 0 : obj.dishonest;
  if (typeof dishonest !== "number" || !Number.isSafeInteger(dishonest) || dishonest < 0) {
    fail(source, `"dishonest" must be a whole number from 0 (got ${JSON.stringify(obj.dishonest)})`);
  }
  const quorum = Math.floor((n + dishonest) / 2) + 1;
  if (n - dishonest < quorum) {
    fail(
      source,
      `"dishonest": ${dishonest} cannot be tolerated by ${n} servers: a decision needs ${quorum} votes and ` +
        `only ${n - dishonest} remain with ${dishonest} silent (${3 * dishonest + 1} servers at least)`,
    );
  }
  genesis.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return {
    intervalMs,
    startFrame,
    timing: { intervalMs, skewMs, blackoutMs, servers: n },
    servers,
    dishonest,
    quorum,
    id: networkId({
      keys: servers.map((s) => s.keyHex),
      genesis,
      startFrame,
      intervalMs,
      skewMs,
      blackoutMs,
      dishonest,
    }),
    genesis,
    supply,
  };
}

/**
 * SHA-256 (hex) of the canonical text `coin-network-v2` and a newline, then the JSON of
 * `{keys, genesis, startFrame, intervalMs, skewMs, blackoutMs, dishonest}` with keys in peers.json order
 * and the genesis sorted by account.
 */
export function networkId(fields: {
  keys: readonly string[];
  genesis: readonly (readonly [string, number])[];
  startFrame: number;
  intervalMs: number;
  skewMs: number;
  blackoutMs: number;
  dishonest: number;
}): string {
  const { keys, genesis, startFrame, intervalMs, skewMs, blackoutMs, dishonest } = fields;
  const text = "coin-network-v2\n" +
    JSON.stringify({ keys, genesis, startFrame, intervalMs, skewMs, blackoutMs, dishonest });
  return sha256Hex(new TextEncoder().encode(text));
}

/** The parts of a network file that the network id covers, named as in peers.json (docs/protocol.md, 7). */
export const NETWORK_PARTS = [
  "servers",
  "genesis",
  "start",
  "interval",
  "skew",
  "blackout",
  "dishonest",
] as const;

/** One part of a network file that the network id covers. */
export type NetworkPart = (typeof NETWORK_PARTS)[number];

/** SHA-256 (hex) of each part of a network file. */
export type NetworkParts = Readonly<Record<NetworkPart, string>>;

/**
 * One SHA-256 (hex) per part the network id covers, so that two servers whose ids differ can say which
 * parts of their peers.json files do: SHA-256 of `coin-network-part-v1`, a newline, the part's name, a
 * newline and the JSON of its value. The values: `servers` the keys as lowercase hex in file order,
 * `genesis` the `[account hex, amount]` list sorted by account, `start` the first frame's start (unix ms),
 * `interval`, `skew` and `blackout` in ms, `dishonest` the number.
 *
 * @example
 * ```ts
 * const parts = networkParts(network);
 * parts.genesis; // 64 hex digits
 * ```
 */
export function networkParts(network: Network): NetworkParts {
  const values: Record<NetworkPart, unknown> = {
    servers: network.servers.map((s) => s.keyHex),
    genesis: network.genesis,
    start: network.startFrame * network.intervalMs,
    interval: network.intervalMs,
    skew: network.timing.skewMs,
    blackout: network.timing.blackoutMs,
    dishonest: network.dishonest,
  };
  const encoder = new TextEncoder();
  const part = (name: NetworkPart) =>
    sha256Hex(encoder.encode(`coin-network-part-v1\n${name}\n${JSON.stringify(values[name])}`));
  return Object.fromEntries(NETWORK_PARTS.map((name) => [name, part(name)])) as Record<NetworkPart, string>;
}

/**
 * The parts whose hash in `theirs` (another server's answer, not trusted to have any shape) differs from
 * `mine`, in NETWORK_PARTS order; a part it does not give is not listed.
 */
export function differingParts(mine: NetworkParts, theirs: unknown): NetworkPart[] {
  if (typeof theirs !== "object" || theirs === null) return [];
  const given = theirs as Record<string, unknown>;
  return NETWORK_PARTS.filter((name) => typeof given[name] === "string" && given[name] !== mine[name]);
}

/** Reads and validates a network file. */
export async function readNetwork(path: string): Promise<Network> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (info.size > MAX_PEERS_FILE_BYTES) fail(path, `it is larger than ${MAX_PEERS_FILE_BYTES} bytes`);
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof CoinError) throw err;
    if (err instanceof Deno.errors.NotFound) {
      throw new CoinError(`Cannot read network file "${path}": it does not exist`);
    }
    throw new CoinError(`Cannot read network file "${path}": ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = parseJson(text);
  } catch (err) {
    if (!(err instanceof JsonError)) throw err;
    throw new CoinError(`Cannot read network file "${path}": it is not valid JSON: ${err.message}`);
  }
  return parseNetwork(json, path);
}

/** The server in `network` with public key `keyHex`, or undefined. */
export function findPeer(network: Network, keyHex: string): Peer | undefined {
  return network.servers.find((s) => s.keyHex === keyHex);
}

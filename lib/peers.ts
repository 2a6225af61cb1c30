// The network file, peers.json: the interval, the ordered server list (the alpha rotation) and the
// genesis balances. Every validation error names the field and the problem.

import { fromHex, toHex } from "./_bytes.ts";
import { CoinError } from "./errors.ts";
import type { Timing } from "./frames.ts";
import { MAX_AMOUNT } from "./tx.ts";

/** Limits on a network file. */
export const MAX_PEERS_FILE_BYTES = 16 * 1024 * 1024;
export const MAX_SERVERS = 64;
export const MIN_INTERVAL_MS = 200;
export const MAX_INTERVAL_MS = 3_600_000;

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
  readonly timing: Timing;
  readonly servers: readonly Peer[];
  /** Strict majority of all servers: 2 of 3, 3 of 5. */
  readonly majority: number;
  /** Genesis balances, account hex (lowercase) to amount. */
  readonly genesis: readonly [string, number][];
  readonly supply: number;
}

/** The JSON shape written by `coin devnet` and by hand. */
export interface NetworkJson {
  interval: number;
  skew?: number;
  blackout?: number;
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

/** Validates parsed JSON; `source` names the file in errors. */
export function parseNetwork(json: unknown, source = "peers.json"): Network {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail(source, "it is not a JSON object");
  }
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!["interval", "skew", "blackout", "servers", "genesis"].includes(key)) {
      fail(source, `unknown field "${key}"`);
    }
  }
  const intervalMs = seconds(source, "interval", obj.interval, MIN_INTERVAL_MS, MAX_INTERVAL_MS);
  const skewMs = obj.skew === undefined ? 5_000 : seconds(source, "skew", obj.skew, 0, 600_000);
  const blackoutMs = obj.blackout === undefined
    ? Math.round(intervalMs / 10)
    : seconds(source, "blackout", obj.blackout, 0, intervalMs / 2);

  if (!Array.isArray(obj.servers) || obj.servers.length === 0) {
    fail(source, `"servers" must be a non-empty list`);
  }
  if (obj.servers.length > MAX_SERVERS) fail(source, `"servers" has more than ${MAX_SERVERS} entries`);
  const seen = new Set<string>();
  const addresses = new Set<string>();
  const servers: Peer[] = obj.servers.map((raw: unknown, index: number) => {
    const at = `servers[${index}]`;
    if (typeof raw !== "object" || raw === null) fail(source, `${at} must be an object`);
    const s = raw as Record<string, unknown>;
    const key = typeof s.key === "string" ? fromHex(s.key, 32) : undefined;
    if (key === undefined) fail(source, `${at}.key must be 64 hex digits`);
    const keyHex = toHex(key);
    if (seen.has(keyHex)) fail(source, `${at}.key duplicates an earlier server's key`);
    seen.add(keyHex);
    if (typeof s.host !== "string" || s.host.length === 0 || s.host.length > 253) {
      fail(source, `${at}.host must be a host name or address`);
    }
    if (typeof s.port !== "number" || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      fail(source, `${at}.port must be an integer from 1 to 65535 (got ${JSON.stringify(s.port)})`);
    }
    if (addresses.has(`${s.host}:${s.port}`)) fail(source, `${at} repeats the address ${s.host}:${s.port}`);
    addresses.add(`${s.host}:${s.port}`);
    if (s.name !== undefined && (typeof s.name !== "string" || s.name.length > 64)) {
      fail(source, `${at}.name must be a string of at most 64 characters`);
    }
    const name = typeof s.name === "string" && s.name !== "" ? s.name : keyHex.slice(0, 8);
    return { index, name, key, keyHex, host: s.host, port: s.port };
  });

  if (typeof obj.genesis !== "object" || obj.genesis === null || Array.isArray(obj.genesis)) {
    fail(source, `"genesis" must be an object of account hex to amount`);
  }
  const genesis: [string, number][] = [];
  const accounts = new Set<string>();
  let supply = 0;
  for (const [account, amount] of Object.entries(obj.genesis as Record<string, unknown>)) {
    const key = fromHex(account, 32);
    if (key === undefined) fail(source, `genesis account "${account}" is not 64 hex digits`);
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
  return {
    intervalMs,
    timing: { intervalMs, skewMs, blackoutMs, servers: servers.length },
    servers,
    majority: Math.floor(servers.length / 2) + 1,
    genesis,
    supply,
  };
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
    json = JSON.parse(text);
  } catch {
    throw new CoinError(`Cannot read network file "${path}": it is not valid JSON`);
  }
  return parseNetwork(json, path);
}

/** The server in `network` with public key `keyHex`, or undefined. */
export function findPeer(network: Network, keyHex: string): Peer | undefined {
  return network.servers.find((s) => s.keyHex === keyHex);
}

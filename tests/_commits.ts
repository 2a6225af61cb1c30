// Helpers that build certified commits (lib/certificate.ts) the way a quorum of servers would: a network
// of servers with known seeds, a commit of any state signed by the servers asked for, its archive bytes
// and name, and ways to forge one (too few signatures, an outsider's key, a state that is not the one
// signed). Synchronous (node:crypto signer), so a subprocess and a test share them.

import { concatBytes, toHex } from "../lib/_bytes.ts";
import { archiveName } from "../lib/archive.ts";
import {
  type Certificate,
  type Commit,
  commitFileHash,
  encodeCommit,
  frameDigest,
  genesisDigest,
  txsHash,
  votePayload,
} from "../lib/certificate.ts";
import { frameStartMs } from "../lib/frames.ts";
import { directoryReader } from "../lib/recovery.ts";
import { sha256 } from "../lib/hash.ts";
import { publicKeyOfSeed, type Signer, signerOf } from "../lib/keys.ts";
import { genesisState, type Ledger, type RecentIds, type State } from "../lib/ledger.ts";
import { type Network, type NetworkJson, parseNetwork } from "../lib/peers.ts";
import type { Tx } from "../lib/tx.ts";

/** The seed of test server `n`: 32 copies of `n` (tests/_helpers.ts makeKeyPair uses the same rule). */
export function serverSeed(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

/** A network whose servers' seeds are known, so the test can sign as any of them. */
export interface SigningNetwork {
  readonly network: Network;
  /** The peers.json the network was parsed from (write it with JSON.stringify). */
  readonly json: NetworkJson;
  /** Seed of each server, in peers.json order. */
  readonly seeds: readonly Uint8Array[];
  /** Synchronous signer of each server, in peers.json order. */
  readonly signers: readonly Signer[];
}

/**
 * A network of `servers` servers (seeds `firstSeed`, `firstSeed + 1`, …), `genesis` balances (account hex
 * to amount), `interval` and `start` in seconds (defaults: 3 servers, seed 101, 1 s, 1_700_000_000).
 */
export function signingNetwork(options: {
  genesis: Record<string, number>;
  servers?: number;
  firstSeed?: number;
  interval?: number;
  start?: number;
  dishonest?: number;
  basePort?: number;
}): SigningNetwork {
  const count = options.servers ?? 3;
  const firstSeed = options.firstSeed ?? 101;
  const seeds = Array.from({ length: count }, (_, i) => serverSeed(firstSeed + i));
  const json: NetworkJson = {
    start: options.start ?? 1_700_000_000,
    interval: options.interval ?? 1,
    ...(options.dishonest === undefined ? {} : { dishonest: options.dishonest }),
    servers: seeds.map((seed, i) => ({
      name: `s${i + 1}`,
      key: toHex(publicKeyOfSeed(seed)),
      host: "127.0.0.1",
      port: (options.basePort ?? 7100) + i,
    })),
    genesis: { ...options.genesis },
  };
  return { network: parseNetwork(json), json, seeds, signers: seeds.map((seed) => signerOf({ seed })) };
}

/** The digest of the genesis state of `network`: the `prevDigest` of its first frame. */
export function genesisDigestOf(network: Network): string {
  return genesisDigest(network.id, genesisState(network.genesis));
}

/** The signature a server gives to a precommit of `digest` in `slot`. */
export function signPrecommit(
  signer: Signer,
  networkId: string,
  slot: { height: number; round: number; prevDigest: string },
  digest: string,
): Uint8Array {
  return signer(sha256(votePayload("precommit", networkId, slot, digest)));
}

/** What makeCommit() may be told; every field has a sound default. */
export interface CommitOptions {
  /** The committed frame (default: the network's start frame). */
  frame?: number;
  /** The state after the frame (default: the genesis). */
  state?: State;
  /** The recent ids of the state (default: those of `state`, else none). */
  recent?: RecentIds;
  /** Digest of the state before (default: the genesis digest). */
  prevDigest?: string;
  /** The first frame the agreement could decide (default: `frame`). */
  height?: number;
  round?: number;
  /** The frame's transfers (default: none). */
  txs?: readonly Tx[];
  /** Indices of the servers that sign (default: the first quorum of them). */
  signers?: readonly number[];
  /** Replaces the signatures altogether (a forgery). */
  signatures?: Certificate["signatures"];
  /** Replaces the certified digest (a certificate over something else). */
  digest?: string;
}

/** A commit and its archive file: bytes, content hash, frame start in unix ms and file name. */
export interface CommitFile {
  readonly commit: Commit;
  readonly bytes: Uint8Array;
  readonly hash: string;
  readonly ms: number;
  readonly name: string;
}

/** A commit of `options.state` for `options.frame` certified by a quorum of `net`'s servers. */
export function makeCommit(net: SigningNetwork, options: CommitOptions = {}): CommitFile {
  const { network } = net;
  const frame = options.frame ?? network.startFrame;
  const base = options.state ?? genesisState(network.genesis);
  const state: State = options.recent === undefined ? base : { ledger: base.ledger, recent: options.recent };
  const prevDigest = options.prevDigest ?? genesisDigestOf(network);
  const txsDigest = txsHash(options.txs ?? []);
  const slot = { height: options.height ?? frame, round: options.round ?? 0, prevDigest };
  const digest = options.digest ?? frameDigest(network.id, frame, prevDigest, state, txsDigest);
  const who = options.signers ?? Array.from({ length: network.quorum }, (_, i) => i);
  const signatures = options.signatures ??
    who.map((i) => ({ signer: i, signature: signPrecommit(net.signers[i]!, network.id, slot, digest) }));
  return fileOf(network, { frame, state, txsDigest, cert: { ...slot, digest, signatures } });
}

/** The archive file of `commit` as `network` names it (frame start in unix ms). */
export function fileOf(network: Network, commit: Commit): CommitFile {
  const chunks = encodeCommit(network.id, commit);
  const hash = commitFileHash(chunks);
  const ms = frameStartMs(commit.frame, network.intervalMs);
  return { commit, bytes: concatBytes(chunks), hash, ms, name: archiveName(hash, ms) };
}

/** The same commit with another state (same frame, same certificate): a state that is not the one signed. */
export function withState(network: Network, file: CommitFile, state: State): CommitFile {
  return fileOf(network, { ...file.commit, state });
}

/**
 * Commits of `ledgers` in consecutive frames from `firstFrame` (default: the network's start frame), each
 * chained to the one before (the first to the genesis), with the given recent ids (default none).
 */
export function makeChain(
  net: SigningNetwork,
  ledgers: readonly Ledger[],
  options: { firstFrame?: number; step?: number; recent?: (i: number) => RecentIds } = {},
): CommitFile[] {
  const files: CommitFile[] = [];
  let prevDigest = genesisDigestOf(net.network);
  const first = options.firstFrame ?? net.network.startFrame;
  ledgers.forEach((ledger, i) => {
    const file = makeCommit(net, {
      frame: first + i * (options.step ?? 1),
      state: { ledger, recent: options.recent?.(i) ?? [] },
      prevDigest,
    });
    files.push(file);
    prevDigest = file.commit.cert.digest;
  });
  return files;
}

export { directoryReader };

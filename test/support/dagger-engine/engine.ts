// A Dagger engine stand-in that EXECUTES: the subset of Dagger v0.21's GraphQL API the module
// uses, served where the SDK connects (DAGGER_SESSION_PORT/TOKEN), run in bubblewrap over a
// debootstrapped stand-in for node:24-bookworm-slim. Differences from the real engine: README.md.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
	cpSync,
	existsSync,
	lstatSync,
	mkdirSync,
	mkdtempSync,
	readFileSync,
	readlinkSync,
	renameSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { connect, createServer as createNetServer, type Server as NetServer } from "node:net";
import { dirname, join, posix, resolve } from "node:path";
import { type FieldNode, Kind, type OperationDefinitionNode, parse, type ValueNode } from "graphql";
import { gitignorePatterns, walkFiltered } from "./patterns.ts";
import { pruneStore, touchEntry } from "./prune.ts";

export const ENGINE_CACHE =
	process.env.WORKERS_PIPELINE_ENGINE_CACHE ?? "/var/cache/workers-pipeline-engine";
const INIT = join(import.meta.dirname, "init.mjs");
const ROOTFS_SH = join(import.meta.dirname, "rootfs.sh");

// The image's config (docker inspect node:24-bookworm-slim): what `from` adds besides the files.
const NODE_IMAGE_ENV: [string, string][] = [
	["PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
	["NODE_VERSION", "24.21.0"],
];

/** Why the stand-in cannot run here, or undefined when it can (root, bwrap, unshare). */
export const engineUnavailable = (): string | undefined => {
	if (process.platform !== "linux") return "the engine stand-in needs Linux";
	if (process.getuid?.() !== 0)
		return "the engine stand-in needs root (overlay mounts, bubblewrap)";
	for (const bin of ["/usr/bin/bwrap", "/usr/bin/unshare", "/usr/sbin/debootstrap"])
		if (!existsSync(bin)) return `${bin} is missing: apt-get install -y bubblewrap debootstrap`;
	return undefined;
};

/** True when rootfs.sh has already built the stand-in's root (no build needed to run). */
export const rootfsBuilt = (cache = ENGINE_CACHE): boolean => {
	const key = /^key=(\S+)$/m.exec(readFileSync(ROOTFS_SH, "utf8"))?.[1];
	return key !== undefined && existsSync(join(cache, `rootfs-${key}`, ".complete"));
};

/** Builds (once, cached outside the repository) the stand-in for node:24-bookworm-slim. */
export const ensureRootfs = (cache = ENGINE_CACHE): string => {
	const r = spawnSync("bash", [ROOTFS_SH, cache], {
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
	});
	if (r.status !== 0) throw new Error(`building the engine rootfs failed (exit ${r.status})`);
	return r.stdout.trim().split("\n").at(-1) as string;
};

const sha = (...parts: unknown[]) =>
	`sha256:${createHash("sha256").update(JSON.stringify(parts)).digest("hex")}`;

// ---- values -------------------------------------------------------------------------------

interface DirState {
	root: string;
	digest: string;
}
interface FileState {
	path: string;
	digest: string;
}
interface Secret {
	kind: "Secret";
	name: string;
	plaintext: string;
	digest: string;
}
interface CacheVolume {
	kind: "CacheVolume";
	key: string;
	digest: string;
}
type Mount =
	| { type: "dir"; path: string; layers: string[] }
	| { type: "cache"; path: string; volume: CacheVolume }
	| { type: "secret"; path: string; secret: Secret }
	| { type: "tmp"; path: string };
interface ExecResult {
	exitCode: number;
	stdout: string;
	stderr: string;
}
interface CtrState {
	key: string;
	layers: string[];
	mounts: Mount[];
	env: [string, string][];
	secretEnv: [string, Secret][];
	workdir: string;
	exec?: ExecResult & { args: string[] };
}
type Lazy<T> = () => Promise<T>;
interface Container {
	kind: "Container";
	state: Lazy<CtrState>;
}
interface Directory {
	kind: "Directory";
	state: Lazy<DirState>;
}
interface File {
	kind: "File";
	state: Lazy<FileState>;
}
interface Host {
	kind: "Host";
}
interface Query {
	kind: "Query";
}
interface ModuleObject {
	kind: "Module";
	type: string;
	instance: Record<string, unknown>;
}
type Value = Container | Directory | File | Secret | CacheVolume | Host | Query | ModuleObject;

// Each value is evaluated once, as dagql caches a call's result within a session.
const once = <T>(fn: () => Promise<T>): Lazy<T> => {
	let p: Promise<T> | undefined;
	return () => {
		p ??= fn();
		return p;
	};
};

export class ExecFailure extends Error {
	constructor(
		readonly args: string[],
		readonly result: ExecResult,
	) {
		// core/container_exec.go: the engine's message for an unexpected exit code.
		super(
			`process "${args.join(" ")}" did not complete successfully: exit code: ${result.exitCode}`,
		);
	}
}

export interface EngineStats {
	execs: { args: string[]; cached: boolean; exitCode: number }[];
	hits: number;
	misses: number;
}

/** A module function callable by another module (dag.<name>(...)), resolved in-process. */
export interface ModuleBinding {
	/** Creates the module's object from the constructor arguments the caller sent. */
	construct: (args: Record<string, unknown>, load: (id: string) => unknown) => Promise<object>;
	/** Turns a module function's return value into an engine value (Directory/File IDs, scalars). */
	result: (value: unknown) => Promise<unknown>;
}

export interface EngineOptions {
	/** Layer store and cache volumes (persisted so a second run reuses the layers). */
	cacheDir?: string;
	/** Loopback ports reachable from inside the sandbox (the test's own servers). */
	loopbackPorts?: number[];
	/** Hosts the sandbox may reach through the engine's egress proxy (the package registry). */
	egressHosts?: string[];
	/** Modules other modules may call, by their field name on Query (e.g. workersPipeline). */
	modules?: Record<string, ModuleBinding>;
}

export interface Engine {
	port: number;
	token: string;
	stats: EngineStats;
	/** Every secret plaintext set in this session (checked absent from layers and output). */
	secrets: () => string[];
	/** The host directories holding every layer this session produced. */
	layerDirs: () => string[];
	/** Modules other modules may call (dag.<field>(...)); register after loading them. */
	modules: Record<string, ModuleBinding>;
	close: () => Promise<void>;
}

// ---- the engine ---------------------------------------------------------------------------

export const startEngine = async (options: EngineOptions = {}): Promise<Engine> => {
	const cacheDir = options.cacheDir ?? ENGINE_CACHE;
	const rootfs = ensureRootfs(ENGINE_CACHE);
	const store = join(cacheDir, "store");
	for (const d of ["layers", "dirs", "volumes", "tmp"])
		mkdirSync(join(store, d), { recursive: true });
	// The engine's GC runs on its own; here once per session, before anything is mounted.
	pruneStore(store);
	const stats: EngineStats = { execs: [], hits: 0, misses: 0 };
	const objects = new Map<string, Value>();
	const secrets = new Map<string, Secret>();
	const layersSeen = new Set<string>();
	const inflight = new Map<string, Promise<unknown>>();
	const token = randomUUID();
	const modules: Record<string, ModuleBinding> = { ...options.modules };
	const running = new Set<ReturnType<typeof spawn>>();

	const register = (v: Value, id: string): string => {
		objects.set(id, v);
		return id;
	};
	const idOf = (v: Value): string => {
		for (const [id, o] of objects) if (o === v) return id;
		return register(v, `${v.kind}:${randomUUID()}`);
	};
	const load = (id: string, kind: Value["kind"]): Value => {
		const v = objects.get(id);
		// dagql refuses an ID of another type or from nowhere.
		if (!v || v.kind !== kind) throw new Error(`failed to load ${kind} from ID ${id.slice(0, 40)}`);
		return v;
	};

	// Deduplicates identical work across concurrent requests, as the engine's cache does.
	const dedup = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
		const running = inflight.get(key) as Promise<T> | undefined;
		if (running) return running;
		const p = fn().finally(() => inflight.delete(key));
		inflight.set(key, p);
		return p;
	};

	// ---- directories: immutable snapshots in the store, named by content digest ----
	const digestTree = (root: string): string => {
		const h = createHash("sha256");
		for (const { path, entry } of walkFiltered(root, [])) {
			const full = join(root, path);
			const st = lstatSync(full);
			h.update(`${path}\0${st.mode}\0`);
			if (entry.isSymbolicLink()) h.update(readlinkSync(full));
			else if (entry.isFile()) h.update(readFileSync(full));
			h.update("\0");
		}
		return `sha256:${h.digest("hex")}`;
	};
	const freeze = (tmp: string): DirState => {
		const digest = digestTree(tmp);
		const root = join(store, "dirs", digest.slice(7));
		if (existsSync(root)) {
			rmSync(tmp, { recursive: true, force: true });
			touchEntry(root);
		} else renameSync(tmp, root);
		return { root, digest };
	};
	const scratch = () => mkdtempSync(join(store, "tmp", "d-"));
	const copyFiltered = (
		from: string,
		to: string,
		exclude: string[] = [],
		include: string[] = [],
	) => {
		for (const { path, entry } of walkFiltered(from, exclude, include)) {
			const src = join(from, path);
			const dest = join(to, path);
			if (entry.isDirectory()) mkdirSync(dest, { recursive: true });
			else {
				mkdirSync(dirname(dest), { recursive: true });
				cpSync(src, dest, { verbatimSymlinks: true, preserveTimestamps: true });
			}
		}
	};
	const dirValue = (fn: () => Promise<DirState>): Directory => ({
		kind: "Directory",
		state: once(fn),
	});
	const fileValue = (fn: () => Promise<FileState>): File => ({ kind: "File", state: once(fn) });
	const fileOf = (dir: Directory, path: string): File =>
		fileValue(async () => {
			const d = await dir.state();
			const full = join(d.root, posix.normalize(`/${path}`));
			// core/directory.go File(): a missing path is an error, a directory is not a file.
			if (!existsSync(full) || !statSync(full).isFile()) throw new Error(`${path}: no such file`);
			return {
				path: full,
				digest: `sha256:${createHash("sha256").update(readFileSync(full)).digest("hex")}`,
			};
		});
	const subdir = (dir: Directory, path: string): Directory =>
		dirValue(async () => {
			const d = await dir.state();
			const full = join(d.root, posix.normalize(`/${path}`));
			if (!existsSync(full) || !statSync(full).isDirectory())
				throw new Error(`${path}: no such directory`);
			const tmp = scratch();
			cpSync(full, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
			return freeze(tmp);
		});
	const withDirectory = (
		base: Directory,
		path: string,
		src: Directory,
		exclude?: string[],
		include?: string[],
	) =>
		dirValue(async () => {
			const [b, s] = await Promise.all([base.state(), src.state()]);
			const tmp = scratch();
			cpSync(b.root, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
			const dest = join(tmp, posix.normalize(`/${path}`));
			mkdirSync(dest, { recursive: true });
			// core/directory.go WithDirectory: exclude/include filter the copied tree.
			copyFiltered(s.root, dest, exclude, include);
			return freeze(tmp);
		});
	const emptyDir = () => dirValue(async () => freeze(scratch()));

	// Merges a stack of layers (overlayfs whiteouts included) into one snapshot, via a read-only overlay.
	const mergeLayers = async (layers: string[], sub: string): Promise<DirState> => {
		const tmp = scratch();
		const lower = [...layers].reverse();
		const script =
			lower.length === 1
				? `cp -a "${join(lower[0] as string, sub)}/." "${tmp}/"`
				: `mkdir -p "${tmp}.m" && mount -t overlay overlay -o "lowerdir=${lower.join(":")}" "${tmp}.m" && cp -a "${tmp}.m${sub}/." "${tmp}/"`;
		const r = spawnSync("unshare", ["-m", "--propagation", "private", "sh", "-ec", script], {
			encoding: "utf8",
		});
		rmSync(`${tmp}.m`, { recursive: true, force: true });
		if (r.status !== 0) throw new Error(`${sub}: no such directory (${r.stderr.trim()})`);
		return freeze(tmp);
	};

	// ---- containers ----
	const ctrValue = (fn: () => Promise<CtrState>): Container => ({
		kind: "Container",
		state: once(fn),
	});
	const derive = (
		parent: Container,
		op: string,
		args: unknown[],
		fn: (s: CtrState, key: string) => Promise<CtrState> | CtrState,
	) =>
		ctrValue(async () => {
			const s = await parent.state();
			const inputs = await Promise.all(args.map(inputDigest));
			// The engine's cache key: the parent's key, the operation, the digests of its inputs.
			const key = sha(s.key, op, inputs);
			return fn(s, key);
		});
	const inputDigest = async (a: unknown): Promise<unknown> => {
		if (a && typeof a === "object" && "kind" in a) {
			const v = a as Value;
			if (v.kind === "Directory" || v.kind === "File") return (await v.state()).digest;
			if (v.kind === "Secret" || v.kind === "CacheVolume") return v.digest;
		}
		return a;
	};
	// Longest mount prefix: where a path inside the container lives.
	const mountAt = (s: CtrState, path: string) =>
		s.mounts
			.filter((m) => path === m.path || path.startsWith(`${m.path}/`))
			.sort((a, b) => b.path.length - a.path.length)[0];
	const absolute = (s: CtrState, path: string) => posix.resolve(s.workdir, path);
	const ctrDirectory = (ctr: Container, path: string): Directory =>
		dirValue(async () => {
			const s = await ctr.state();
			const abs = absolute(s, path);
			const m = mountAt(s, abs);
			if (m && m.type !== "dir")
				throw new Error(`${abs}: reading from a ${m.type} mount is not supported by the stand-in`);
			return mergeLayers(m ? m.layers : s.layers, m ? abs.slice(m.path.length) : abs);
		});
	// A new top layer holding `src` at `path` (in the mount that holds the path, as the engine writes).
	const addLayer = async (
		s: CtrState,
		key: string,
		path: string,
		fill: (dest: string) => Promise<void>,
	): Promise<CtrState> => {
		const abs = absolute(s, path);
		const layer = join(store, "layers", key.slice(7), "fs");
		// Two selections of one chain (exitCode and stdout, say) reach the same layer at once:
		// computed once, as buildkit's solver shares a vertex in flight (solver/jobs.go).
		if (!existsSync(layer))
			await dedup(layer, async () => {
				if (existsSync(layer)) return;
				const tmp = scratch();
				const m = mountAt(s, abs);
				const rel = m ? abs.slice(m.path.length) : abs;
				await fill(join(tmp, rel));
				mkdirSync(dirname(layer), { recursive: true });
				renameSync(tmp, layer);
			});
		layersSeen.add(layer);
		touchEntry(dirname(layer));
		const m = mountAt(s, abs);
		if (m?.type === "dir")
			return {
				...s,
				key,
				mounts: s.mounts.map((x) => (x === m ? { ...m, layers: [...m.layers, layer] } : x)),
			};
		if (m) throw new Error(`${abs}: cannot write into a ${m.type} mount`);
		return { ...s, key, layers: [...s.layers, layer] };
	};

	// ---- exec ----
	const netDir = mkdtempSync(join(store, "tmp", "net-"));
	const relays: NetServer[] = [];
	const egress = options.egressHosts?.length
		? await startEgressProxy(options.egressHosts)
		: undefined;
	const ports = [...(options.loopbackPorts ?? []), ...(egress ? [egress.port] : [])];
	for (const port of ports) {
		const relay = createNetServer((inside) => {
			const out = connect(port, "127.0.0.1");
			inside.pipe(out).pipe(inside);
			inside.on("error", () => out.destroy());
			out.on("error", () => inside.destroy());
		});
		await new Promise<void>((ok) => relay.listen(join(netDir, `${port}.sock`), ok));
		relays.push(relay);
	}

	const scrub = (text: string, values: string[]) =>
		values.filter((v) => v.length > 0).reduce((t, v) => t.split(v).join("***"), text);

	const runExec = async (
		s: CtrState,
		key: string,
		args: string[],
		opts: ExecOpts,
	): Promise<CtrState> => {
		const dir = join(store, "layers", key.slice(7));
		const meta = join(dir, "meta.json");
		const mountUpper = (i: number) => join(dir, `mount-${i}`);
		const secretValues = [
			...s.secretEnv.map(([, x]) => x.plaintext),
			...s.mounts.flatMap((m) => (m.type === "secret" ? [m.secret.plaintext] : [])),
		];
		let result: ExecResult;
		const cached = existsSync(meta);
		if (cached) {
			stats.hits++;
			touchEntry(dir);
			result = JSON.parse(readFileSync(meta, "utf8")) as ExecResult;
		} else {
			stats.misses++;
			result = await sandbox(s, args, opts, secretValues, dir);
		}
		stats.execs.push({ args, cached, exitCode: result.exitCode });
		// core/container_exec.go: exit codes outside `expect` fail the exec, and with it the chain.
		const ok =
			opts.expect === "ANY" ||
			(opts.expect === "FAILURE" ? result.exitCode !== 0 : result.exitCode === 0);
		if (!ok) {
			rmSync(dir, { recursive: true, force: true });
			throw new ExecFailure(args, result);
		}
		if (!existsSync(meta)) writeFileSync(meta, JSON.stringify(result));
		const root = join(dir, "root");
		layersSeen.add(root);
		let i = 0;
		const mounts = s.mounts.map((m) => {
			if (m.type !== "dir") return m;
			const up = mountUpper(i++);
			layersSeen.add(up);
			return { ...m, layers: [...m.layers, up] };
		});
		return { ...s, key, layers: [...s.layers, root], mounts, exec: { ...result, args } };
	};

	const sandbox = async (
		s: CtrState,
		args: string[],
		opts: ExecOpts,
		secretValues: string[],
		dir: string,
	): Promise<ExecResult> => {
		const work = mkdtempSync(join(store, "tmp", "x-"));
		const stage = join(work, "out");
		mkdirSync(stage);
		const lines: string[] = ["set -e"];
		const binds: string[] = [];
		const overlay = (lowers: string[], upper: string, merged: string) => {
			mkdirSync(upper, { recursive: true });
			const w = `${upper}.work`;
			mkdirSync(w, { recursive: true });
			mkdirSync(merged, { recursive: true });
			lines.push(
				`mount -t overlay overlay -o "lowerdir=${[...lowers].reverse().join(":")},upperdir=${upper},workdir=${w}" "${merged}"`,
			);
		};
		overlay(s.layers, join(stage, "root"), join(work, "m-root"));
		let i = 0;
		const secretsDir = join(work, "secrets");
		mkdirSync(secretsDir, { mode: 0o700 });
		for (const m of [...s.mounts].sort((a, b) => a.path.length - b.path.length)) {
			if (m.type === "dir") {
				const idx = s.mounts.filter((x) => x.type === "dir").indexOf(m);
				const merged = join(work, `m-${idx}`);
				overlay(m.layers, join(stage, `mount-${idx}`), merged);
				binds.push("--bind", merged, m.path);
			} else if (m.type === "cache") {
				// core/cache.go: a cache volume is shared, persisted, and never part of a layer.
				const vol = join(store, "volumes", m.volume.digest.slice(7));
				mkdirSync(vol, { recursive: true });
				binds.push("--bind", vol, m.path);
			} else if (m.type === "secret") {
				// core/container.go WithMountedSecret: the plaintext lives in a tmpfs, outside every layer.
				const f = join(secretsDir, String(i++));
				writeFileSync(f, m.secret.plaintext, { mode: 0o400 });
				binds.push("--ro-bind", f, m.path);
			} else binds.push("--tmpfs", m.path);
		}
		// The runtime creates a missing working directory (buildkit's exec does the same).
		const wm = mountAt(s, s.workdir);
		if (!wm) lines.push(`mkdir -p "${join(work, "m-root", s.workdir)}"`);
		else if (wm.type === "dir") {
			const idx = s.mounts.filter((x) => x.type === "dir").indexOf(wm);
			lines.push(`mkdir -p "${join(work, `m-${idx}`, s.workdir.slice(wm.path.length))}"`);
		}
		const spec = join(work, "spec.json");
		writeFileSync(
			spec,
			JSON.stringify({
				ports,
				sockets: "/run/.wp-engine/net",
				args,
				redirectStdout: opts.redirectStdout && absolute(s, opts.redirectStdout),
				redirectStderr: opts.redirectStderr && absolute(s, opts.redirectStderr),
			}),
		);
		const env: [string, string][] = [
			...s.env,
			...s.secretEnv.map(([k, x]) => [k, x.plaintext] as [string, string]),
		];
		if (egress) {
			const proxy = `http://127.0.0.1:${egress.port}`;
			env.push(
				["HTTPS_PROXY", proxy],
				["https_proxy", proxy],
				["NO_PROXY", "127.0.0.1,localhost"],
				["no_proxy", "127.0.0.1,localhost"],
			);
		}
		// A host behind a TLS-inspecting proxy trusts an extra CA; the sandbox's egress needs it too.
		const ca = process.env.NODE_EXTRA_CA_CERTS;
		if (egress && ca && existsSync(ca)) {
			binds.push("--ro-bind", ca, "/run/.wp-engine/ca.crt");
			env.push(["NODE_EXTRA_CA_CERTS", "/run/.wp-engine/ca.crt"]);
		}
		const bwrap = [
			"/usr/bin/bwrap",
			"--unshare-all",
			"--die-with-parent",
			"--bind",
			join(work, "m-root"),
			"/",
			...binds,
			"--proc",
			"/proc",
			"--dev",
			"/dev",
			"--ro-bind",
			netDir,
			"/run/.wp-engine/net",
			"--ro-bind",
			INIT,
			"/run/.wp-engine/init.mjs",
			"--ro-bind",
			spec,
			"/run/.wp-engine/spec.json",
			"--clearenv",
			...env.flatMap(([k, v]) => ["--setenv", k, v]),
			"--chdir",
			s.workdir,
			"/usr/local/bin/node",
			"/run/.wp-engine/init.mjs",
			"/run/.wp-engine/spec.json",
		];
		lines.push('exec "$@"');
		const child = spawn(
			"/usr/bin/unshare",
			["-m", "--propagation", "private", "sh", "-c", lines.join("\n"), "sh", ...bwrap],
			{
				stdio: ["ignore", "pipe", "pipe"],
				env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
			},
		);
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c) => {
			stdout += c;
		});
		child.stderr.on("data", (c) => {
			stderr += c;
			if (process.env.WORKERS_PIPELINE_ENGINE_LOG) process.stderr.write(c);
		});
		running.add(child);
		child.on("close", () => running.delete(child));
		const exitCode = await new Promise<number>((ok) =>
			child.on("close", (code) => ok(code ?? 137)),
		);
		rmSync(secretsDir, { recursive: true, force: true });
		for (const f of ["root", ...s.mounts.map((_, j) => `mount-${j}`)])
			rmSync(join(stage, `${f}.work`), { recursive: true, force: true });
		// engine/engineutil/secret_scrub.go: secret values are replaced by *** in the exec's output.
		const result = {
			exitCode,
			stdout: scrub(stdout, secretValues),
			stderr: scrub(stderr, secretValues),
		};
		// The relay and init mount points bwrap created are the stand-in's, not the exec's.
		rmSync(join(stage, "root", "run", ".wp-engine"), { recursive: true, force: true });
		rmSync(dir, { recursive: true, force: true });
		mkdirSync(dirname(dir), { recursive: true });
		renameSync(stage, dir);
		rmSync(work, { recursive: true, force: true });
		return result;
	};

	// ---- resolvers: one per field the module (or a test) selects ----
	type Args = Record<string, unknown>;
	const str = (a: Args, k: string) => a[k] as string;
	const dirArg = (a: Args, k: string) => load(str(a, k), "Directory") as Directory;
	const fileArg = (a: Args, k: string) => load(str(a, k), "File") as File;

	const resolveField = async (parent: Value, field: string, a: Args): Promise<unknown> => {
		if (field === "id") return idOf(parent);
		switch (parent.kind) {
			case "Query":
				return resolveQuery(field, a);
			case "Container":
				return resolveContainer(parent, field, a);
			case "Directory":
				return resolveDirectory(parent, field, a);
			case "File":
				return resolveFile(parent, field, a);
			case "Host":
				if (field === "directory") {
					const path = resolve(str(a, "path"));
					// core/schema/host.go directory(exclude, include): the upload is filtered on the host.
					return dirValue(async () => {
						const tmp = scratch();
						copyFiltered(path, tmp, (a.exclude as string[]) ?? [], (a.include as string[]) ?? []);
						return freeze(tmp);
					});
				}
				if (field === "file")
					return fileValue(async () => {
						const p = resolve(str(a, "path"));
						return {
							path: p,
							digest: `sha256:${createHash("sha256").update(readFileSync(p)).digest("hex")}`,
						};
					});
				break;
			case "Module":
				return callModule(parent, field, a);
		}
		throw new Error(`Cannot query field "${field}" on type "${parent.kind}".`);
	};

	const resolveQuery = async (field: string, a: Args): Promise<unknown> => {
		if (field.startsWith("load") && field.endsWith("FromID")) {
			const kind = field.slice(4, -6) as Value["kind"];
			return load(str(a, "id"), kind);
		}
		switch (field) {
			case "container":
				return ctrValue(async () => ({
					key: sha("scratch"),
					layers: [],
					mounts: [],
					env: [],
					secretEnv: [],
					workdir: "/",
				}));
			case "directory":
				return emptyDir();
			case "host":
				return { kind: "Host" } satisfies Host;
			case "cacheVolume":
				// core/schema/cache.go: a volume is named by its key, shared by every caller using it.
				return {
					kind: "CacheVolume",
					key: str(a, "key"),
					digest: sha("cacheVolume", str(a, "key")),
				} satisfies CacheVolume;
			case "setSecret": {
				// The digest is the plaintext's hash, as core/secret.go keys secrets in cache keys.
				const s: Secret = {
					kind: "Secret",
					name: str(a, "name"),
					plaintext: str(a, "plaintext"),
					digest: sha("secret", str(a, "plaintext")),
				};
				secrets.set(s.name, s);
				return s;
			}
			case "version":
				return "v0.21.9";
		}
		const mod = modules[field];
		if (mod) {
			const instance = await mod.construct(a, (id) => objects.get(id) && id);
			return {
				kind: "Module",
				type: field,
				instance: instance as Record<string, unknown>,
			} satisfies ModuleObject;
		}
		throw new Error(`Cannot query field "${field}" on type "Query".`);
	};

	const callModule = async (m: ModuleObject, field: string, a: Args): Promise<unknown> => {
		const fn = m.instance[field];
		if (typeof fn !== "function")
			throw new Error(`Cannot query field "${field}" on type "${m.type}".`);
		const binding = modules[m.type] as ModuleBinding;
		const out = await binding.result(await (fn as (x: Args) => unknown).call(m.instance, a));
		if (typeof out === "string" && objects.has(out)) return objects.get(out);
		return out;
	};

	const resolveContainer = async (c: Container, field: string, a: Args): Promise<unknown> => {
		switch (field) {
			case "from":
				// core/schema/container.go from(): the stand-in has one image, the node:24-bookworm-slim stand-in.
				if (
					!/^(docker\.io\/library\/)?node:24[.\w-]*bookworm-slim(@sha256:[0-9a-f]{64})?$/.test(
						str(a, "address"),
					)
				)
					throw new Error(
						`pull access denied for ${str(a, "address")}: the stand-in only has node:24-bookworm-slim`,
					);
				return derive(c, "from", [str(a, "address")], (s, key) => ({
					...s,
					key,
					layers: [rootfs],
					env: NODE_IMAGE_ENV,
					workdir: "/",
				}));
			case "withEnvVariable":
				return derive(c, field, [a.name, a.value], (s, key) => ({
					...s,
					key,
					env: [...s.env.filter(([k]) => k !== a.name), [str(a, "name"), str(a, "value")]],
				}));
			case "withoutEnvVariable":
				return derive(c, field, [a.name], (s, key) => ({
					...s,
					key,
					env: s.env.filter(([k]) => k !== a.name),
				}));
			case "withSecretVariable": {
				const secret = load(str(a, "secret"), "Secret") as Secret;
				// core/container.go WithSecretVariable: the value is set at exec time, never in the image config.
				return derive(c, field, [a.name, secret], (s, key) => ({
					...s,
					key,
					secretEnv: [...s.secretEnv.filter(([k]) => k !== a.name), [str(a, "name"), secret]],
				}));
			}
			case "withWorkdir":
				return derive(c, field, [a.path], (s, key) => ({
					...s,
					key,
					workdir: absolute(s, str(a, "path")),
				}));
			case "withMountedDirectory": {
				const dir = dirArg(a, "source");
				return derive(c, field, [a.path, dir], async (s, key) => {
					const d = await dir.state();
					const path = absolute(s, str(a, "path"));
					return {
						...s,
						key,
						mounts: [
							...s.mounts.filter((m) => m.path !== path),
							{ type: "dir", path, layers: [d.root] },
						],
					};
				});
			}
			case "withMountedCache": {
				const volume = load(str(a, "cache"), "CacheVolume") as CacheVolume;
				return derive(c, field, [a.path, volume], (s, key) => {
					const path = absolute(s, str(a, "path"));
					return {
						...s,
						key,
						mounts: [...s.mounts.filter((m) => m.path !== path), { type: "cache", path, volume }],
					};
				});
			}
			case "withMountedSecret": {
				const secret = load(str(a, "source"), "Secret") as Secret;
				return derive(c, field, [a.path, secret], (s, key) => {
					const path = absolute(s, str(a, "path"));
					return {
						...s,
						key,
						mounts: [...s.mounts.filter((m) => m.path !== path), { type: "secret", path, secret }],
					};
				});
			}
			case "withoutMount":
				return derive(c, field, [a.path], (s, key) => {
					const path = absolute(s, str(a, "path"));
					return { ...s, key, mounts: s.mounts.filter((m) => m.path !== path) };
				});
			case "withMountedTemp":
				return derive(c, field, [a.path], (s, key) => ({
					...s,
					key,
					mounts: [...s.mounts, { type: "tmp", path: absolute(s, str(a, "path")) }],
				}));
			case "withDirectory": {
				const dir = dirArg(a, "source");
				return derive(c, field, [a.path, dir, a.exclude, a.include], async (s, key) => {
					const d = await dir.state();
					return addLayer(s, key, str(a, "path"), async (dest) => {
						mkdirSync(dest, { recursive: true });
						copyFiltered(
							d.root,
							dest,
							(a.exclude as string[]) ?? [],
							(a.include as string[]) ?? [],
						);
					});
				});
			}
			case "withFile": {
				const file = fileArg(a, "source");
				return derive(c, field, [a.path, file], async (s, key) => {
					const f = await file.state();
					return addLayer(s, key, str(a, "path"), async (dest) => {
						mkdirSync(dirname(dest), { recursive: true });
						cpSync(f.path, dest);
					});
				});
			}
			case "withNewFile":
				return derive(c, field, [a.path, a.contents], (s, key) =>
					addLayer(s, key, str(a, "path"), async (dest) => {
						mkdirSync(dirname(dest), { recursive: true });
						writeFileSync(dest, str(a, "contents"));
					}),
				);
			case "withExec": {
				const args = a.args as string[];
				const opts: ExecOpts = {
					expect: (a.expect as string) ?? "SUCCESS",
					redirectStdout: a.redirectStdout as string,
					redirectStderr: a.redirectStderr as string,
				};
				return derive(
					c,
					field,
					[args, opts.expect, opts.redirectStdout, opts.redirectStderr],
					(s, key) => dedup(key, () => runExec(s, key, args, opts)),
				);
			}
			case "exitCode":
			case "stdout":
			case "stderr": {
				const s = await c.state();
				// core/container.go: output fields read the last exec's results.
				if (!s.exec) throw new Error(`${field}: no command has been executed`);
				return s.exec[field];
			}
			case "sync":
				await c.state();
				return c;
			case "directory":
				return ctrDirectory(c, str(a, "path"));
			case "file": {
				const abs = str(a, "path");
				return fileOf(ctrDirectory(c, posix.dirname(abs)), posix.basename(abs));
			}
			case "envVariable": {
				const s = await c.state();
				return s.env.find(([k]) => k === a.name)?.[1] ?? null;
			}
			case "workdir":
				return (await c.state()).workdir;
		}
		throw new Error(`Cannot query field "${field}" on type "Container".`);
	};

	const resolveDirectory = async (d: Directory, field: string, a: Args): Promise<unknown> => {
		switch (field) {
			case "file":
				return fileOf(d, str(a, "path"));
			case "directory":
				return subdir(d, str(a, "path"));
			case "filter":
				return dirValue(async () => {
					const b = await d.state();
					// core/directory.go filter: exclude/include globs, then the tree's own .gitignore files.
					const exclude = [
						...((a.exclude as string[]) ?? []),
						...(a.gitignore ? gitignorePatterns(b.root) : []),
					];
					const tmp = scratch();
					copyFiltered(b.root, tmp, exclude, (a.include as string[]) ?? []);
					return freeze(tmp);
				});
			case "withDirectory":
				return withDirectory(
					d,
					str(a, "path"),
					dirArg(a, "source"),
					a.exclude as string[],
					a.include as string[],
				);
			case "withFile": {
				const file = fileArg(a, "source");
				return dirValue(async () => {
					const [b, f] = await Promise.all([d.state(), file.state()]);
					const tmp = scratch();
					cpSync(b.root, tmp, { recursive: true, verbatimSymlinks: true });
					const dest = join(tmp, posix.normalize(`/${str(a, "path")}`));
					mkdirSync(dirname(dest), { recursive: true });
					cpSync(f.path, dest);
					return freeze(tmp);
				});
			}
			case "withNewFile":
				return dirValue(async () => {
					const b = await d.state();
					const tmp = scratch();
					cpSync(b.root, tmp, { recursive: true, verbatimSymlinks: true });
					const dest = join(tmp, posix.normalize(`/${str(a, "path")}`));
					mkdirSync(dirname(dest), { recursive: true });
					writeFileSync(dest, str(a, "contents"));
					return freeze(tmp);
				});
			case "withoutDirectory":
			case "withoutFile":
				return dirValue(async () => {
					const b = await d.state();
					const tmp = scratch();
					cpSync(b.root, tmp, { recursive: true, verbatimSymlinks: true });
					rmSync(join(tmp, posix.normalize(`/${str(a, "path")}`)), {
						recursive: true,
						force: true,
					});
					return freeze(tmp);
				});
			case "entries": {
				const s = await d.state();
				const at = join(s.root, posix.normalize(`/${(a.path as string) ?? "."}`));
				return walkFiltered(at, [])
					.filter((e) => !e.path.includes("/"))
					.map((e) => (e.entry.isDirectory() ? `${e.path}/` : e.path));
			}
			case "glob": {
				const s = await d.state();
				const re = (await import("./patterns.ts")).parsePatterns([str(a, "pattern")])[0]?.re;
				return walkFiltered(s.root, [])
					.map((e) => e.path)
					.filter((p) => re?.test(p));
			}
			case "digest":
				return (await d.state()).digest;
			case "export": {
				const s = await d.state();
				const path = resolve(str(a, "path"));
				// core/directory.go Export: wipe replaces the target, otherwise files are merged in.
				if (a.wipe) rmSync(path, { recursive: true, force: true });
				mkdirSync(path, { recursive: true });
				cpSync(s.root, path, { recursive: true, verbatimSymlinks: true });
				return path;
			}
			case "sync":
				await d.state();
				return d;
		}
		throw new Error(`Cannot query field "${field}" on type "Directory".`);
	};

	const resolveFile = async (f: File, field: string, a: Args): Promise<unknown> => {
		const s = await f.state();
		switch (field) {
			case "contents":
				return readFileSync(s.path, "utf8");
			case "name":
				return posix.basename(s.path);
			case "size":
				return statSync(s.path).size;
			case "digest":
				return s.digest;
			case "export": {
				const path = resolve(str(a, "path"));
				mkdirSync(dirname(path), { recursive: true });
				cpSync(s.path, path);
				return path;
			}
			case "sync":
				return f;
		}
		throw new Error(`Cannot query field "${field}" on type "File".`);
	};

	// ---- GraphQL over HTTP ----
	const evaluate = async (value: Value, field: FieldNode): Promise<unknown> => {
		const args = Object.fromEntries(
			(field.arguments ?? []).map((x) => [x.name.value, argValue(x.value)]),
		);
		const out = await resolveField(value, field.name.value, args);
		if (!field.selectionSet) {
			if (out && typeof out === "object" && "kind" in out) return idOf(out as Value);
			return out;
		}
		if (Array.isArray(out)) return Promise.all(out.map((o) => select(o as Value, field)));
		return out == null ? null : select(out as Value, field);
	};
	const select = async (value: Value, field: FieldNode): Promise<Record<string, unknown>> => {
		const result: Record<string, unknown> = {};
		for (const sel of field.selectionSet?.selections ?? []) {
			if (sel.kind !== Kind.FIELD) continue;
			result[sel.alias?.value ?? sel.name.value] = await evaluate(value, sel);
		}
		return result;
	};

	const server: Server = createServer(async (req, res) => {
		// The session token is the basic-auth user (engine/server/session.go).
		const auth = Buffer.from(
			(req.headers.authorization ?? "").replace(/^Basic /, ""),
			"base64",
		).toString();
		if (auth.split(":")[0] !== token) {
			res.writeHead(401, { "content-type": "application/json" });
			return res.end(JSON.stringify({ errors: [{ message: "unauthorized" }] }));
		}
		const body = JSON.parse(await readBody(req)) as { query: string };
		// Headers at once and a space now and then: a long exec must not trip the client's
		// header/body timeouts (undici's default is 300 s); JSON ignores leading whitespace.
		// One request per connection: a reused idle socket can be reset by the server's keep-alive
		// timeout just as the SDK sends on it (ECONNRESET).
		res.writeHead(200, { "content-type": "application/json", connection: "close" });
		const keepalive = setInterval(() => res.write(" "), 20_000);
		const reply = (payload: unknown) => {
			clearInterval(keepalive);
			res.end(JSON.stringify(payload));
		};
		try {
			const op = parse(body.query).definitions[0] as OperationDefinitionNode;
			const data = await select({ kind: "Query" }, { selectionSet: op.selectionSet } as FieldNode);
			reply({ data });
		} catch (e) {
			if (e instanceof ExecFailure)
				// The error extensions the SDK turns into an ExecError (common/graphql/compute_query.js).
				return reply({
					data: null,
					errors: [
						{
							message: e.message,
							extensions: {
								_type: "EXEC_ERROR",
								cmd: e.args,
								exitCode: e.result.exitCode,
								stdout: e.result.stdout,
								stderr: e.result.stderr,
							},
						},
					],
				});
			reply({ data: null, errors: [{ message: (e as Error).message }] });
		}
	});
	await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
	return {
		port: (server.address() as AddressInfo).port,
		token,
		stats,
		secrets: () => [...secrets.values()].map((s) => s.plaintext),
		layerDirs: () => [...layersSeen],
		modules,
		close: async () => {
			for (const child of running) child.kill("SIGKILL");
			await new Promise((ok) => server.close(ok));
			for (const r of relays) r.close();
			await egress?.close();
			rmSync(netDir, { recursive: true, force: true });
		},
	};
};

interface ExecOpts {
	expect: string;
	redirectStdout?: string;
	redirectStderr?: string;
}

const argValue = (v: ValueNode): unknown => {
	switch (v.kind) {
		case Kind.LIST:
			return v.values.map(argValue);
		case Kind.OBJECT:
			return Object.fromEntries(v.fields.map((f) => [f.name.value, argValue(f.value)]));
		case Kind.INT:
			return Number(v.value);
		case Kind.FLOAT:
			return Number(v.value);
		case Kind.NULL:
			return null;
		case Kind.ENUM:
			return v.value;
		case Kind.VARIABLE:
			throw new Error("variables are not used by the SDK");
		default:
			return v.value;
	}
};

const readBody = (req: IncomingMessage) =>
	new Promise<string>((ok, fail) => {
		let body = "";
		req.on("data", (c) => {
			body += c;
		});
		req.on("end", () => ok(body));
		req.on("error", fail);
	});

// The real engine's containers reach the internet; the stand-in's reach only the loopback relays
// and, through this CONNECT proxy, the listed hosts (the npm registry).
const startEgressProxy = async (hosts: string[]) => {
	const server = createServer((_req, res) => {
		res.writeHead(405).end();
	});
	server.on("connect", (req, client, head) => {
		const [host, port] = (req.url ?? "").split(":");
		if (!host || !hosts.includes(host) || port !== "443") {
			client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
			return;
		}
		const upstream = connect(Number(port), host, () => {
			client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
			upstream.write(head);
			upstream.pipe(client).pipe(upstream);
		});
		upstream.on("error", () => client.destroy());
		client.on("error", () => upstream.destroy());
	});
	await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
	return {
		port: (server.address() as AddressInfo).port,
		close: () => new Promise<void>((ok) => server.close(() => ok())),
	};
};

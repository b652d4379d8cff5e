// The engine stand-in holds Dagger's semantics: each case would pass against the real engine.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sdkEntry } from "../../dagger/support.ts";
import { type Engine, engineUnavailable, rootfsBuilt, startEngine } from "./engine.ts";

const NODE = "node:24.21.0-bookworm-slim";
// Runs where the stand-in's root is already built, or when asked to build it (.ci/run sets it).
const why =
	engineUnavailable() ??
	(process.env.WORKERS_PIPELINE_ENGINE || rootfsBuilt()
		? undefined
		: "set WORKERS_PIPELINE_ENGINE=1");
// biome-ignore lint/suspicious/noExplicitAny: the SDK is loaded dynamically (shared global client).
type Sdk = any;

describe.skipIf(why)("engine stand-in", () => {
	let engine: Engine;
	let sdk: Sdk;
	let server: Server;
	let cacheDir: string;
	let host: string;
	beforeAll(async () => {
		server = createServer((_q, r) => r.end("from the test's own server"));
		await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
		cacheDir = mkdtempSync(join(tmpdir(), "wp-engine-"));
		engine = await startEngine({
			cacheDir,
			loopbackPorts: [(server.address() as AddressInfo).port],
		});
		process.env.DAGGER_SESSION_PORT = String(engine.port);
		process.env.DAGGER_SESSION_TOKEN = engine.token;
		sdk = await import(pathToFileURL(sdkEntry()).href);
		host = mkdtempSync(join(tmpdir(), "wp-host-"));
		mkdirSync(join(host, "ci/node_modules/x"), { recursive: true });
		mkdirSync(join(host, "src"), { recursive: true });
		writeFileSync(join(host, "ci/a.ts"), "a");
		writeFileSync(join(host, "ci/node_modules/x/i.js"), "x");
		writeFileSync(join(host, "src/b.ts"), "b");
		writeFileSync(join(host, "package.json"), "{}");
	}, 600_000);
	afterAll(async () => {
		delete process.env.DAGGER_SESSION_PORT;
		delete process.env.DAGGER_SESSION_TOKEN;
		await engine?.close();
		await new Promise((ok) => server?.close(ok));
		rmSync(cacheDir, { recursive: true, force: true });
		rmSync(host, { recursive: true, force: true });
	});
	const run = <T>(fn: (dag: Sdk) => Promise<T>): Promise<T> => {
		let out: T | undefined;
		return sdk
			.connection(async () => {
				out = await fn(sdk.dag);
			})
			.then(() => out as T);
	};
	const base = (dag: Sdk) => dag.container().from(NODE);

	it("runs execs in the node:24 bookworm root", async () => {
		const out = await run((dag) =>
			base(dag).withExec(["sh", "-c", "cat /etc/debian_version; node --version; id -u"]).stdout(),
		);
		expect(out).toMatch(/^12\.\d+\nv24\.\d+\.\d+\n0\n$/);
	});

	it("fails the whole chain when an exec fails, unless it expects any exit code", async () => {
		const failing = (dag: Sdk, opts?: object) =>
			base(dag)
				.withWorkdir("/w")
				.withExec(["sh", "-c", "echo report > r.txt; echo oops >&2; exit 3"], opts);
		const err: Sdk = await run((dag) => failing(dag).file("/w/r.txt").contents()).catch(
			(e: Sdk) => e,
		);
		expect(err).toMatchObject({ exitCode: 3, stderr: "oops\n" });
		expect(String(err.message)).toMatch(/did not complete successfully: exit code: 3/);
		const kept = await run(async (dag) => {
			const ctr = failing(dag, { expect: sdk.ReturnType.Any });
			return [await ctr.exitCode(), await ctr.file("/w/r.txt").contents()];
		});
		expect(kept).toEqual([3, "report\n"]);
	});

	it("writes into a mounted directory's own snapshot, never into the source", async () => {
		const out = await run(async (dag) => {
			const src = dag.host().directory(host);
			const ctr = base(dag)
				.withMountedDirectory("/app", src)
				.withExec(["sh", "-c", "echo built > /app/out.txt; rm /app/package.json"]);
			return [await ctr.directory("/app").entries(), await src.entries()];
		});
		expect(out[0]).toEqual(["ci/", "out.txt", "src/"]);
		expect(out[1]).toEqual(["ci/", "package.json", "src/"]);
	});

	it("applies exclude patterns as the engine does (last match wins, ** spans directories)", async () => {
		const out = await run(async (dag) => {
			const dir = dag
				.host()
				.directory(host, { exclude: ["*", "!ci", "!package.json", "**/node_modules"] });
			return base(dag)
				.withMountedDirectory("/d", dir)
				.withExec(["sh", "-c", "cd /d && find . -type f | sort"])
				.stdout();
		});
		expect(out).toBe("./ci/a.ts\n./package.json\n");
	});

	it("keeps secrets out of layers and scrubs them from output", async () => {
		const plaintext = "s3cr3t-value-8f2a";
		const out = await run(async (dag) => {
			const secret = dag.setSecret("token", plaintext);
			return base(dag)
				.withSecretVariable("TOKEN", secret)
				.withMountedSecret("/run/secrets/t", secret)
				.withExec(["sh", "-c", 'echo "$TOKEN"; cat /run/secrets/t; echo; ls /run/secrets'])
				.stdout();
		});
		expect(out).toBe("***\n***\nt\n");
		// grep exits 1 when no layer file holds the plaintext.
		const grep = spawnSync("grep", ["-rl", plaintext, ...engine.layerDirs(), "/dev/null"]);
		expect(engine.layerDirs().length).toBeGreaterThan(0);
		expect(grep.status).toBe(1);
	});

	it("caches execs by parent, operation and input digests", async () => {
		const chain = (dag: Sdk, content: string, env: string) =>
			base(dag)
				.withMountedDirectory("/in", dag.directory().withNewFile("f", content))
				.withExec(["sh", "-c", "cat /in/f; date +%s%N"])
				.withEnvVariable("AFTER", env)
				.stdout();
		const first = await run((dag) => chain(dag, "one", "x"));
		const hits = engine.stats.hits;
		// An env change after the exec leaves its key alone; a changed input makes a new one.
		expect(await run((dag) => chain(dag, "one", "y"))).toBe(first);
		expect(engine.stats.hits).toBe(hits + 1);
		const changed = await run((dag) => chain(dag, "two", "x"));
		expect(changed).toMatch(/^two\d+\n$/);
		expect(engine.stats.hits).toBe(hits + 1);
	});

	it("shares cache volumes between containers", async () => {
		const out = await run(async (dag) => {
			const vol = dag.cacheVolume(`vol-${Date.now()}`);
			await base(dag).withMountedCache("/c", vol).withExec(["sh", "-c", "echo kept > /c/x"]).sync();
			return base(dag).withMountedCache("/c", vol).withExec(["cat", "/c/x"]).stdout();
		});
		expect(out).toBe("kept\n");
	});

	it("reaches the test's loopback servers and nothing else", async () => {
		const port = (server.address() as AddressInfo).port;
		const script = `fetch("http://127.0.0.1:${port}/").then(r=>r.text()).then(t=>console.log(t));
			fetch("http://127.0.0.1:1/").then(()=>console.log("open"),()=>console.log("refused"));
			fetch("https://registry.npmjs.org/").then(()=>console.log("internet"),()=>console.log("offline"));`;
		const out: string = await run((dag) => base(dag).withExec(["node", "-e", script]).stdout());
		expect(out.split("\n").sort()).toEqual([
			"",
			"from the test's own server",
			"offline",
			"refused",
		]);
	});
});

/**
 * workers-pipeline: lint, test, build, migration test, D1 migrations and verified deploys for a
 * Cloudflare Workers app. Each function runs one `workers-pipeline` CLI subcommand in a pinned
 * Node 24 container; all decisions live in the CLI.
 */
import {
	argument,
	type Container,
	check,
	type Directory,
	dag,
	type File,
	func,
	object,
	ReturnType,
	type Secret,
} from "@dagger.io/dagger";
import { cliArgs, type FlagValues, type FunctionName } from "./cli.js";

// Tag for humans, digest for reproducibility (multi-arch index digest of node:24.21.0-bookworm-slim).
export const NODE_IMAGE =
	"node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6";
export const NPM_CACHE = "workers-pipeline-npm";
export const NEXT_CACHE = "workers-pipeline-next-cache";
// Exactly the locked tree, no lifecycle noise; fails when package.json and the lockfile disagree.
const NPM_CI = ["npm", "ci", "--no-audit", "--no-fund"];
export const PIPELINE_DIR = "/opt/workers-pipeline";
const PIPELINE_SRC = "/src/workers-pipeline";
const PACKED = "/src/packed";
export const APP_DIR = "/app";
export const REPORT_DIR = `${APP_DIR}/.reports`;
export const BUILD_DIR = `${APP_DIR}/.open-next`;
export const CLI = ["node", `${PIPELINE_DIR}/bin/workers-pipeline.js`];
// Worker secret files live in a per-exec temp mount, never in a layer.
const SECRETS_DIR = "/run/workers-pipeline-secrets";
const SECRETS_FILE = `${SECRETS_DIR}/secrets`;
// Written beside the reports by every remote function: the CLI's exit code (0 ok, 1 failed, 2 usage).
export const EXIT_CODE_FILE = "exit-code";
// Where `workers-pipeline serve` listens inside the e2e service.
const E2E_PORT = 8787;
// bookworm's chromium package (the image has no browser; Playwright's own download is refused).
const CHROMIUM_INSTALL = [
	"sh",
	"-c",
	"apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null",
];

// Never uploaded from the caller's checkout: VCS data, local secrets, dependencies, build output.
export const SOURCE_IGNORE = [
	"**/.git",
	"**/.env*",
	"**/.dev.vars*",
	"**/node_modules",
	"**/.next",
	"**/.open-next",
	"**/.wrangler",
	"**/.tools",
	"**/.reports",
];

// What the dependency install sees of the app: a source change elsewhere keeps it cached. Every
// manager's manifest, lockfile and settings (the CLI's `install` picks the manager from them:
// ci/steps/_toolchain.ts LOCKFILES), and yarn berry's checked-in release and plugins.
export const INSTALL_INPUTS = [
	"package.json",
	"package-lock.json",
	"npm-shrinkwrap.json",
	".npmrc",
	"pnpm-lock.yaml",
	"pnpm-workspace.yaml",
	".pnpmfile.cjs",
	"yarn.lock",
	".yarnrc",
	".yarnrc.yml",
	".yarn/releases/**",
	".yarn/plugins/**",
	".yarn/patches/**",
	"patches/**",
	"bun.lock",
	"bun.lockb",
	"bunfig.toml",
];

// The pipeline's own code, loaded from THIS module's context even when used as a dependency
// (a plain literal: the SDK's introspector evaluates it as text, spreads included).
export const PIPELINE_ONLY = [
	"*",
	"!ci",
	"!bin",
	"!scripts",
	"!package.json",
	"!package-lock.json",
	"!tsconfig.json",
	"!tsconfig.build.json",
	"**/node_modules",
];

// Off-by-default switches are left off the command line rather than spelled `--no-x`.
const on = (flag: boolean): true | undefined => (flag ? true : undefined);
// On-by-default switches are turned off with `--no-x` (the CLI negates any boolean).
const off = (noFlag: boolean): false | undefined => (noFlag ? false : undefined);

/** One check's outcome inside ci(): what ran, its exit code and its Markdown summary. */
interface CheckOutcome {
	name: string;
	exitCode: number;
	summary: string;
}

/** How deploy moves traffic to the new version. */
export enum DeployStrategy {
	gradual = "gradual",
	immediate = "immediate",
}

@object()
export class WorkersPipeline {
	source: Directory;
	pipeline: Directory;
	appDir?: string;
	wranglerConfig?: string;
	commit?: string;
	actor?: string;
	runId?: string;
	repository?: string;
	cloudflareApiBaseUrl?: string;

	constructor(
		/** The app to work on (defaults to this repository). Filtered again inside: see app(). */
		@argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
		/** The pipeline code (ci/, bin/, scripts/, package*.json); defaults to this module's own. */
		@argument({ defaultPath: "/", ignore: PIPELINE_ONLY }) pipeline: Directory,
		/**
		 * The app's directory inside source, for an app in a monorepo (`--source . --app-dir
		 * apps/api`): the workspace's lockfile and packages are installed from source's root.
		 */
		appDir?: string,
		/** Wrangler config file inside the app (CLI default: wrangler.jsonc). */
		wranglerConfig?: string,
		/** The commit being built and deployed (the Worker version's tag); default "dev". */
		commit?: string,
		/** Who runs this (e.g. $GITHUB_ACTOR): named in the migration lock and the audit rows. */
		actor?: string,
		/** The CI run (e.g. $GITHUB_RUN_ID), recorded with the actor. */
		runId?: string,
		/** The repository (e.g. $GITHUB_REPOSITORY), recorded with the actor. */
		repository?: string,
		/** Cloudflare API base URL (default https://api.cloudflare.com/client/v4), e.g. a proxy. */
		cloudflareApiBaseUrl?: string,
	) {
		this.source = source;
		this.pipeline = pipeline;
		this.appDir = appDir;
		this.wranglerConfig = wranglerConfig;
		this.commit = commit;
		this.actor = actor;
		this.runId = runId;
		this.repository = repository;
		this.cloudflareApiBaseUrl = cloudflareApiBaseUrl;
	}

	/** Node 24 with the pipeline CLI installed (from its packed tarball, --omit=dev); for composition. */
	@func()
	base(): Container {
		// Packing runs the package's prepack (its build), which needs the dev tree: a separate stage.
		const packed = dag
			.container()
			.from(NODE_IMAGE)
			.withMountedCache("/root/.npm", dag.cacheVolume(NPM_CACHE))
			.withDirectory(PIPELINE_SRC, this.pipeline)
			.withWorkdir(PIPELINE_SRC)
			.withExec(NPM_CI)
			.withExec([
				"sh",
				"-c",
				`mkdir -p ${PACKED} && npm pack --silent --pack-destination ${PACKED}`,
			])
			.directory(PACKED);
		return (
			dag
				.container()
				.from(NODE_IMAGE)
				.withMountedCache("/root/.npm", dag.cacheVolume(NPM_CACHE))
				.withEnvVariable("CI", "true")
				.withMountedDirectory(PACKED, packed)
				.withFile(`${PIPELINE_DIR}/package-lock.json`, this.pipeline.file("package-lock.json"))
				.withWorkdir(PIPELINE_DIR)
				// The tarball's files, then its locked production dependencies only.
				.withExec(["sh", "-c", `tar -xzf ${PACKED}/*.tgz --strip-components=1 -C ${PIPELINE_DIR}`])
				.withExec([...NPM_CI, "--omit=dev"])
				.withoutMount(PACKED)
				.withWorkdir(APP_DIR)
		);
	}

	/** The caller's app as the pipeline sees it: SOURCE_IGNORE and the app's own .gitignore applied. */
	@func()
	app(): Directory {
		// Also for a Directory another module passes in, whatever the caller's own filtering was.
		return this.source.filter({ exclude: SOURCE_IGNORE, gitignore: true });
	}

	// Where the CLI works: source's root, or the app's directory inside it (--app-dir).
	appRoot(): string {
		const dir = (this.appDir ?? "").replace(/^\.\/+/, "").replace(/\/+$/, "");
		if (dir === "" || dir === ".") return APP_DIR;
		if (dir.startsWith("/") || dir.split("/").includes(".."))
			throw new Error(
				`--app-dir ${this.appDir}: give the app's directory relative to --source, inside it`,
			);
		return `${APP_DIR}/${dir}`;
	}

	/** Lint and typecheck the app. */
	@func()
	@check()
	async lint(): Promise<string> {
		return this.passed(this.run(this.installed(), "lint", {}, true));
	}

	/** Run the app's unit tests. */
	@func()
	@check()
	async test(): Promise<string> {
		return this.passed(this.run(this.installed(), "test", {}, true));
	}

	/**
	 * Build the app with OpenNext and return the .open-next directory; `env` builds for that
	 * wrangler environment (CLOUDFLARE_ENV), as the CLI's `build --env` does. Another framework's
	 * build writes elsewhere: deploy and preview build it in their own call.
	 */
	@func()
	async build(noCache = false, env?: string): Promise<Directory> {
		const ctr = await this.built(env, noCache);
		const entries = await ctr.directory(this.appRoot()).entries();
		// Whether the engine lists a directory as "name/" or "name".
		if (!entries.some((entry) => entry.replace(/\/$/, "") === ".open-next"))
			throw new Error(
				"build returns OpenNext's .open-next, and this app's build wrote none (not an OpenNext app): call deploy or preview without --build, and they build it in the same call.",
			);
		return ctr.directory(`${this.appRoot()}/.open-next`);
	}

	// The app built in place (the same exec ci() runs), its output wherever its framework writes it.
	async built(env?: string, noCache = false): Promise<Container> {
		const ctr = this.run(this.installed(), "build", { env, cache: off(noCache) }, true);
		await this.passed(ctr);
		return ctr;
	}

	/** Replay every migration on a fresh database and return the CLI's JSON report. */
	@func()
	@check()
	migrationTest(
		dir?: string,
		env?: string,
		binding?: string,
		updateSnapshot = false,
		parity = false,
		cache = false,
		noData = false,
	): File {
		const flags = {
			json: true,
			dir,
			env,
			binding,
			"update-snapshot": on(updateSnapshot),
			parity: on(parity),
			data: off(noData),
			cache: on(cache),
		};
		// The CLI writes its own report file into --report-dir.
		return this.run(this.withApp(this.base()), "migrationTest", flags).file(
			`${REPORT_DIR}/migration-test.json`,
		);
	}

	/**
	 * lint, test, migration test (and the build unless noBuild) concurrently, each in its own
	 * container and cached on its own; returns one summary and fails when any of them failed.
	 */
	@func()
	async ci(noParity = false, noBuild = false, noCache = false): Promise<string> {
		const installed = this.installed();
		const checks: [string, Container][] = [
			["lint", this.run(installed, "lint", {}, true)],
			["test", this.run(installed, "test", {}, true)],
			[
				"migration-test",
				this.run(this.withApp(this.base()), "migrationTest", { parity: on(!noParity) }, true),
			],
		];
		if (!noBuild)
			checks.push(["build", this.run(installed, "build", { cache: off(noCache) }, true)]);
		const outcomes = await Promise.all(checks.map(([name, ctr]) => this.outcome(name, ctr)));
		const summary = outcomes.map((o) => o.summary.trim()).join("\n\n");
		const failed = outcomes.filter((o) => o.exitCode !== 0).map((o) => o.name);
		if (failed.length) throw new Error(`ci failed: ${failed.join(", ")}\n\n${summary}`);
		return summary;
	}

	/** Show what migrate would apply to the remote D1 database. */
	@func({ cache: "never" })
	async plan(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		binding?: string,
		allowOutOfOrder = false,
	): Promise<string> {
		const ctr = this.cloudflare(this.withApp(this.base()), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, "allow-out-of-order": on(allowOutOfOrder) };
		return this.run(ctr, "plan", flags).stdout();
	}

	/**
	 * Apply pending D1 migrations; returns the reports directory (with the bookmark) and its
	 * exit-code file, also when migrate failed.
	 */
	@func({ cache: "never" })
	async migrate(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		binding?: string,
		dryRun = false,
		autoRestore = false,
		rehearse = false,
		allowOutOfOrder = false,
		lockTimeout?: number,
		lockTtl?: number,
		to?: string,
	): Promise<Directory> {
		const ctr = this.cloudflare(this.withApp(this.base()), cloudflareApiToken, cloudflareAccountId);
		const flags = {
			env,
			binding,
			"dry-run": on(dryRun),
			"auto-restore": on(autoRestore),
			rehearse: on(rehearse),
			"allow-out-of-order": on(allowOutOfOrder),
			"lock-timeout": lockTimeout,
			"lock-ttl": lockTtl,
			to,
		};
		return this.reports(this.run(ctr, "migrate", flags, true));
	}

	/** Record migrations 0001..through as applied on an existing database; returns the reports. */
	@func({ cache: "never" })
	async baseline(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		through: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		binding?: string,
		lockTimeout?: number,
	): Promise<Directory> {
		const ctr = this.cloudflare(this.withApp(this.base()), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, through, "lock-timeout": lockTimeout };
		return this.reports(this.run(ctr, "baseline", flags, true));
	}

	/** Restore D1 to a Time Travel bookmark (from a migrate report); returns the reports. */
	@func({ cache: "never" })
	async restore(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		bookmark: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		binding?: string,
		lockTimeout?: number,
	): Promise<Directory> {
		const ctr = this.cloudflare(this.withApp(this.base()), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, bookmark, "lock-timeout": lockTimeout };
		return this.reports(this.run(ctr, "restore", flags, true));
	}

	/**
	 * Migrate (unless skipMigrate), deploy this commit built for `env` (or `build`, the .open-next
	 * of an OpenNext build made earlier for the same commit), verify health, roll back when
	 * unhealthy, all in this one call; returns the reports directory with its exit-code file. Worker secrets come as a secrets file and/or as
	 * secretsFromEnv names with their secretValues (same order).
	 */
	@func({ cache: "never" })
	async deploy(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		binding?: string,
		skipMigrate = false,
		healthTimeout?: number,
		secretsFile?: Secret,
		secretsFromEnv?: string[],
		secretValues?: Secret[],
		autoRestore = false,
		lockTimeout?: number,
		build?: Directory,
		strategy?: DeployStrategy,
		steps?: string,
		healthProbes?: number,
		healthWindow?: number,
	): Promise<Directory> {
		const names = secretsFromEnv ?? [];
		const values = secretValues ?? [];
		if (names.length !== values.length)
			throw new Error(
				`deploy: ${names.length} secretsFromEnv names but ${values.length} secretValues`,
			);
		// A given build (the bytes an earlier job verified) or the app built in this call for this
		// environment, in place: any framework's output, and a Vite-plugin build of this env.
		let ctr = build
			? this.installed().withDirectory(`${this.appRoot()}/.open-next`, build)
			: await this.built(env);
		// Worker secrets stay Secrets end to end: a file in a temp mount, secret variables.
		if (secretsFile)
			ctr = ctr.withMountedTemp(SECRETS_DIR).withMountedSecret(SECRETS_FILE, secretsFile);
		names.forEach((name, i) => {
			ctr = ctr.withSecretVariable(name, values[i] as Secret);
		});
		ctr = this.cloudflare(ctr, cloudflareApiToken, cloudflareAccountId);
		const flags = {
			env,
			binding,
			"skip-migrate": on(skipMigrate),
			"health-timeout": healthTimeout,
			"secrets-file": secretsFile ? SECRETS_FILE : undefined,
			// The CLI refuses names it cannot pass safely (CLOUDFLARE_*, …), for every face alike.
			"secrets-from-env": names.length ? names.join(",") : undefined,
			"auto-restore": on(autoRestore),
			"lock-timeout": lockTimeout,
			strategy,
			steps,
			"health-probes": healthProbes,
			"health-window": healthWindow,
		};
		return this.reports(this.run(ctr, "deploy", flags, true));
	}

	/** Deploy this build as the Worker Preview pr-<N> of pull request `pr` (cleanup: delete the Preview and its database). */
	@func({ cache: "never" })
	async preview(
		/** The wrangler environment whose config the Preview copies. */
		env: string,
		pr: number,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		binding?: string,
		cleanup = false,
		seed?: string,
		healthUrl?: string,
		healthTimeout?: number,
	): Promise<Directory> {
		// The CLI deploys a Preview only of a build of this commit: built here, in place.
		const ready = cleanup ? this.withApp(this.base()) : await this.built(env);
		const ctr = this.cloudflare(ready, cloudflareApiToken, cloudflareAccountId);
		const flags = {
			env,
			binding,
			pr,
			cleanup: on(cleanup),
			seed,
			"health-url": healthUrl,
			"health-timeout": healthTimeout,
			// The PR comment the shim posts, beside the reports.
			"comment-file": `${REPORT_DIR}/preview-comment.md`,
		};
		return this.reports(this.run(ctr, "preview", flags, true));
	}

	/** The project's own format check and, when configured, its architecture rules. */
	@func()
	@check()
	async format(): Promise<string> {
		return this.passed(this.run(this.installed(), "format", {}, true));
	}

	/**
	 * Stryker mutation testing; returns the reports (score, survivors) with the exit code. The
	 * source filter drops .git, so only `all` (every mutant) is meaningful here.
	 */
	@func()
	async mutation(all = false, since?: string): Promise<Directory> {
		return this.reports(this.run(this.installed(), "mutation", { all: on(all), since }, true));
	}

	/** The app's end-to-end tests (`e2e --base-url`) against the app served as a Dagger service. */
	@func()
	@check()
	async e2e(): Promise<string> {
		const args = cliArgs("serve", { cwd: this.appRoot(), host: "0.0.0.0", port: E2E_PORT });
		const app = this.installed()
			.withExposedPort(E2E_PORT)
			.asService({ args: [...CLI, ...args] });
		// Playwright never downloads a browser: Debian's chromium, as on the host (docs/quality.md).
		const tests = this.installed()
			.withMountedCache("/var/cache/apt/archives", dag.cacheVolume("workers-pipeline-apt"))
			.withExec(CHROMIUM_INSTALL)
			.withEnvVariable("WORKERS_PIPELINE_CHROMIUM", "/usr/bin/chromium")
			.withServiceBinding("app", app);
		return this.run(tests, "e2e", { "base-url": `http://app:${E2E_PORT}` }).stdout();
	}

	/** Roll the Worker back to the previous (or a given) version; returns the reports directory. */
	@func({ cache: "never" })
	async rollback(
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		/** The wrangler environment (`env.<name>` in its config); none is the top-level Worker. */
		env?: string,
		to?: string,
	): Promise<Directory> {
		const ctr = this.cloudflare(this.withApp(this.base()), cloudflareApiToken, cloudflareAccountId);
		return this.reports(this.run(ctr, "rollback", { env, to }, true));
	}

	// The app's files at /app (a copy, so its node_modules can live in the same tree).
	withApp(ctr: Container): Container {
		return this.stamped(ctr.withDirectory(APP_DIR, this.app()));
	}

	// The CLI stamps builds and tags versions with GITHUB_SHA; after the installs, so a new
	// commit reuses them.
	stamped(ctr: Container): Container {
		return this.commit ? ctr.withEnvVariable("GITHUB_SHA", this.commit) : ctr;
	}

	// The app's dependencies keyed on its lockfile alone, then its source; caches for npm and Next.
	// The CLI's `install` installs them with the app's own manager (npm ci, pnpm, yarn, bun).
	installed(): Container {
		// A monorepo app: every workspace member's manifest too (the workspace installs them all),
		// and the app's own lockfile and settings when it has them (an app that is no workspace
		// member, given with the directory that holds its migrations): a pattern without `**`
		// matches at the top only (moby patternmatcher).
		const dir = this.appRoot().slice(APP_DIR.length + 1);
		const lock = this.app().filter({
			include: dir
				? [...INSTALL_INPUTS, "**/package.json", ...INSTALL_INPUTS.map((p) => `${dir}/${p}`)]
				: INSTALL_INPUTS,
		});
		const deps = this.base()
			.withDirectory(APP_DIR, lock)
			// No --report-dir: its report is not one of the reports the functions return. The
			// project's own lifecycle scripts are held back: this layer has none of its sources.
			.withExec([...CLI, ...cliArgs("install", { cwd: this.appRoot(), scripts: "deps" })])
			.withMountedCache(`${this.appRoot()}/.next/cache`, dag.cacheVolume(NEXT_CACHE));
		// Then those scripts (prisma generate, nuxt prepare, patch-package) on the sources.
		return this.stamped(
			deps
				.withDirectory(APP_DIR, this.app())
				.withExec([...CLI, ...cliArgs("install", { cwd: this.appRoot(), scripts: "project" })]),
		);
	}

	// Credentials and run identity go in after every install step, so no install script sees the
	// token; the buster keeps the engine from replaying a remote call from cache.
	cloudflare(ctr: Container, token: Secret, accountId: string): Container {
		let out = ctr
			.withSecretVariable("CLOUDFLARE_API_TOKEN", token)
			.withEnvVariable("CLOUDFLARE_ACCOUNT_ID", accountId);
		if (this.cloudflareApiBaseUrl)
			out = out.withEnvVariable("CLOUDFLARE_API_BASE_URL", this.cloudflareApiBaseUrl);
		if (this.actor)
			out = out
				.withEnvVariable("GITHUB_ACTIONS", "true")
				.withEnvVariable("GITHUB_ACTOR", this.actor);
		if (this.runId) out = out.withEnvVariable("GITHUB_RUN_ID", this.runId);
		if (this.repository) out = out.withEnvVariable("GITHUB_REPOSITORY", this.repository);
		return out.withEnvVariable("WP_CACHE_BUSTER", `${Date.now()}-${crypto.randomUUID()}`);
	}

	// The reports a remote call wrote, with its exit code beside them: they exist even when it failed.
	async reports(ctr: Container): Promise<Directory> {
		const code = await ctr.exitCode();
		return ctr.directory(REPORT_DIR).withNewFile(EXIT_CODE_FILE, `${code}\n`);
	}

	// The same exec ci() runs (so each is cached once for both), failing like the engine would.
	async passed(ctr: Container): Promise<string> {
		const [code, stdout] = await Promise.all([ctr.exitCode(), ctr.stdout()]);
		if (code !== 0) throw new Error(`exit code ${code}\n${stdout}${await ctr.stderr()}`);
		return stdout;
	}

	// A check's exit code and the Markdown report the CLI wrote for it.
	async outcome(name: string, ctr: Container): Promise<CheckOutcome> {
		// A CLI that failed before writing its report (bad usage) still says why, on stderr.
		const [exitCode, summary] = await Promise.all([
			ctr.exitCode(),
			ctr
				.file(`${REPORT_DIR}/${name}.md`)
				.contents()
				.catch(async () => `## ${name}\n\n${await ctr.stderr()}`),
		]);
		return { name, exitCode, summary };
	}

	// The one place a function's CLI call is made (install aside: installed() runs it without
	// reports): globals come from the module, the rest from the caller.
	// keepGoing runs it with expect ANY, so its reports survive a failure.
	run<F extends FunctionName>(
		ctr: Container,
		fn: F,
		flags: FlagValues<F>,
		keepGoing = false,
	): Container {
		const globals = { cwd: this.appRoot(), "report-dir": REPORT_DIR, config: this.wranglerConfig };
		const args = cliArgs(fn, { ...flags, ...globals } as FlagValues<F>);
		// An empty reports directory first, so even a CLI that fails before writing has one.
		const ready = keepGoing ? ctr.withDirectory(REPORT_DIR, dag.directory()) : ctr;
		return ready.withExec([...CLI, ...args], keepGoing ? { expect: ReturnType.Any } : undefined);
	}
}

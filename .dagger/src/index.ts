/**
 * workers-pipeline: lint, test, build, migration test, D1 migrations and verified deploys for a
 * Cloudflare Workers app. Each function runs one `workers-pipeline` CLI subcommand in a pinned
 * Node 24 container; all decisions live in the CLI.
 */
import {
	argument,
	type Container,
	type Directory,
	dag,
	type File,
	func,
	object,
	type Secret,
} from "@dagger.io/dagger";
import { cliArgs, type FlagValues, type FunctionName } from "./cli.js";

// Tag for humans, digest for reproducibility (multi-arch index digest of node:24.21.0-bookworm-slim).
export const NODE_IMAGE =
	"node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6";
export const NPM_CACHE = "workers-pipeline-npm";
const INSTALL = ["npm", "install", "--no-save", "--no-audit", "--no-fund"];
export const PIPELINE_DIR = "/pipeline";
export const APP_DIR = "/app";
export const REPORT_DIR = `${APP_DIR}/.reports`;
export const BUILD_DIR = `${APP_DIR}/.open-next`;
const SECRETS_FILE = "/run/secrets/workers-pipeline-secrets";

// Never uploaded from the caller's checkout: dependencies, build output, local state, reports.
export const SOURCE_IGNORE = [
	"**/node_modules",
	"**/.next",
	"**/.open-next",
	"**/.wrangler",
	"**/.tools",
	"**/.reports",
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
	"**/node_modules",
];

// Off-by-default switches are left off the command line rather than spelled `--no-x`.
const on = (flag: boolean): true | undefined => (flag ? true : undefined);
// On-by-default switches are turned off with `--no-x` (the CLI negates any boolean).
const off = (noFlag: boolean): false | undefined => (noFlag ? false : undefined);
// Names a Worker secret may not take: they would replace the module's own credentials.
const RESERVED_ENV = /^(CLOUDFLARE_|WP_|GITHUB_SHA$|CI$|PATH$)/;

/** Deployment environment, as named in wrangler.jsonc `env`. */
export enum DeployEnv {
	staging = "staging",
	production = "production",
}

@object()
export class WorkersPipeline {
	source: Directory;
	pipeline: Directory;
	wranglerConfig?: string;
	commit?: string;

	constructor(
		/** The app to work on (defaults to this repository). */
		@argument({ defaultPath: "/", ignore: SOURCE_IGNORE }) source: Directory,
		/** The pipeline code (ci/, bin/, scripts/, package*.json); defaults to this module's own. */
		@argument({ defaultPath: "/", ignore: PIPELINE_ONLY }) pipeline: Directory,
		/** Wrangler config file inside the app (CLI default: wrangler.jsonc). */
		wranglerConfig?: string,
		/** The commit being built and deployed (the Worker version's tag); default "dev". */
		commit?: string,
	) {
		this.source = source;
		this.pipeline = pipeline;
		this.wranglerConfig = wranglerConfig;
		this.commit = commit;
	}

	/** Lint and typecheck the app. */
	@func()
	async lint(): Promise<string> {
		return this.run(this.toolchain(true), "lint", {}).stdout();
	}

	/** Run the app's unit tests. */
	@func()
	async test(): Promise<string> {
		return this.run(this.toolchain(true), "test", {}).stdout();
	}

	/** Build the app with OpenNext and return the .open-next directory. */
	@func()
	build(noCache = false): Directory {
		return this.run(this.toolchain(true), "build", { cache: off(noCache) }).directory(BUILD_DIR);
	}

	/** Replay every migration on a fresh database and return the JSON report. */
	@func()
	migrationTest(
		dir?: string,
		env?: DeployEnv,
		binding?: string,
		updateSnapshot = false,
		parity = false,
		cache = false,
	): File {
		const out = `${REPORT_DIR}/migration-test.json`;
		const ctr = this.toolchain(false).withExec(["mkdir", "-p", REPORT_DIR]);
		const flags = {
			json: true,
			dir,
			env,
			binding,
			"update-snapshot": on(updateSnapshot),
			parity: on(parity),
			cache: on(cache),
		};
		return this.run(ctr, "migrationTest", flags, out).file(out);
	}

	/** Lint, test, build and migration-test in one go; returns the summary. */
	@func()
	async ci(noParity = false, noBuild = false, noCache = false): Promise<string> {
		const flags = { parity: off(noParity), build: off(noBuild), cache: off(noCache) };
		return this.run(this.toolchain(true), "ci", flags).stdout();
	}

	/** Show what migrate would apply to the remote D1 database. */
	@func({ cache: "never" })
	async plan(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		binding?: string,
		allowOutOfOrder = false,
	): Promise<string> {
		const ctr = this.cloudflare(this.toolchain(false), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, "allow-out-of-order": on(allowOutOfOrder) };
		return this.run(ctr, "plan", flags).stdout();
	}

	/** Apply pending D1 migrations and return the reports directory (with the bookmark). */
	@func({ cache: "never" })
	migrate(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		binding?: string,
		dryRun = false,
		autoRestore = false,
		rehearse = false,
		allowOutOfOrder = false,
		lockTimeout?: number,
		lockTtl?: number,
	): Directory {
		const ctr = this.cloudflare(this.toolchain(false), cloudflareApiToken, cloudflareAccountId);
		const flags = {
			env,
			binding,
			"dry-run": on(dryRun),
			"auto-restore": on(autoRestore),
			rehearse: on(rehearse),
			"allow-out-of-order": on(allowOutOfOrder),
			"lock-timeout": lockTimeout,
			"lock-ttl": lockTtl,
		};
		return this.run(ctr, "migrate", flags).directory(REPORT_DIR);
	}

	/** Record migrations 0001..through as applied on an existing database; returns the reports. */
	@func({ cache: "never" })
	baseline(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		through: string,
		binding?: string,
		lockTimeout?: number,
	): Directory {
		const ctr = this.cloudflare(this.toolchain(false), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, through, "lock-timeout": lockTimeout };
		return this.run(ctr, "baseline", flags).directory(REPORT_DIR);
	}

	/** Restore D1 to a Time Travel bookmark (from a migrate report); returns the reports. */
	@func({ cache: "never" })
	restore(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		bookmark: string,
		binding?: string,
		lockTimeout?: number,
	): Directory {
		const ctr = this.cloudflare(this.toolchain(false), cloudflareApiToken, cloudflareAccountId);
		const flags = { env, binding, bookmark, "lock-timeout": lockTimeout };
		return this.run(ctr, "restore", flags).directory(REPORT_DIR);
	}

	/**
	 * Deploy this build (migrating first unless skipMigrate), verify health, roll back when
	 * unhealthy; returns the reports directory. Worker secrets come as a secrets file and/or as
	 * secretsFromEnv names with their secretValues (same order), all Secrets end to end.
	 */
	@func({ cache: "never" })
	deploy(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		binding?: string,
		skipMigrate = false,
		healthTimeout?: number,
		secretsFile?: Secret,
		secretsFromEnv?: string[],
		secretValues?: Secret[],
		autoRestore = false,
		lockTimeout?: number,
	): Directory {
		const names = secretsFromEnv ?? [];
		const values = secretValues ?? [];
		if (names.length !== values.length)
			throw new Error(
				`deploy: ${names.length} secretsFromEnv names but ${values.length} secretValues`,
			);
		const bad = names.find((n) => !/^[A-Za-z_]\w*$/.test(n) || RESERVED_ENV.test(n));
		if (bad !== undefined) throw new Error(`deploy: "${bad}" cannot be a Worker secret name here`);
		// The build comes from build() (cached by the engine), so deploy checks the stamp it wrote.
		let ctr = this.toolchain(true).withDirectory(BUILD_DIR, this.build());
		// Worker secrets stay Secrets end to end: a mounted file, secret variables; never a plain value.
		if (secretsFile) ctr = ctr.withMountedSecret(SECRETS_FILE, secretsFile);
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
			"secrets-from-env": names.length ? names.join(",") : undefined,
			"auto-restore": on(autoRestore),
			"lock-timeout": lockTimeout,
		};
		return this.run(ctr, "deploy", flags).directory(REPORT_DIR);
	}

	/** Roll the Worker back to the previous (or a given) version; returns the reports directory. */
	@func({ cache: "never" })
	rollback(
		env: DeployEnv,
		cloudflareApiToken: Secret,
		cloudflareAccountId: string,
		to?: string,
	): Directory {
		const ctr = this.cloudflare(this.toolchain(false), cloudflareApiToken, cloudflareAccountId);
		return this.run(ctr, "rollback", { env, to }).directory(REPORT_DIR);
	}

	// Pinned Node with the pipeline installed and the app mounted; app dependencies only when the
	// step builds or checks the app.
	toolchain(withAppDeps: boolean): Container {
		const ctr = dag
			.container()
			.from(NODE_IMAGE)
			.withMountedCache("/root/.npm", dag.cacheVolume(NPM_CACHE))
			.withEnvVariable("CI", "true")
			.withMountedDirectory(PIPELINE_DIR, this.pipeline)
			.withWorkdir(PIPELINE_DIR)
			// `npm install --no-save`: exactly the locked tree, as on the host (scripts/ensure-deps.sh).
			.withExec(INSTALL)
			.withMountedDirectory(APP_DIR, this.source)
			.withWorkdir(APP_DIR);
		const ready = withAppDeps ? ctr.withExec(INSTALL) : ctr;
		// The CLI stamps builds and tags versions with GITHUB_SHA; after the installs, so a new
		// commit reuses them.
		return this.commit ? ready.withEnvVariable("GITHUB_SHA", this.commit) : ready;
	}

	// Credentials go in after every install step, so no install script ever sees the token; the
	// buster keeps the engine from replaying a remote call from cache.
	cloudflare(ctr: Container, token: Secret, accountId: string): Container {
		return ctr
			.withSecretVariable("CLOUDFLARE_API_TOKEN", token)
			.withEnvVariable("CLOUDFLARE_ACCOUNT_ID", accountId)
			.withEnvVariable("WP_CACHE_BUSTER", `${Date.now()}-${crypto.randomUUID()}`);
	}

	// The one place the CLI is invoked: globals come from the module, the rest from the caller.
	run<F extends FunctionName>(
		ctr: Container,
		fn: F,
		flags: FlagValues<F>,
		stdoutTo?: string,
	): Container {
		const globals = { cwd: APP_DIR, "report-dir": REPORT_DIR, config: this.wranglerConfig };
		const args = cliArgs(fn, { ...flags, ...globals } as FlagValues<F>);
		const argv = ["node", `${PIPELINE_DIR}/bin/workers-pipeline.js`, ...args];
		return ctr.withExec(argv, stdoutTo ? { redirectStdout: stdoutTo } : undefined);
	}
}

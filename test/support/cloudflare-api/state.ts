// The loopback's shared state (databases, jobs, limits' counters, the request log) and the lookups
// every route module uses; one per startCloudflareApi.
import { D1DatabaseState, type DumpOptions } from "../d1-database.ts";
import { FaultInjector } from "../faults.ts";
import { createWorkersApi } from "../workers-api.ts";
import {
	type CloudflareApiOptions,
	type D1DatabaseSpec,
	type D1Limits,
	DEFAULT_D1_LIMITS,
	type RequestRecord,
} from "./options.ts";
import { createPreviewsApi } from "./previews.ts";

const DAY_MS = 24 * 60 * 60_000;

export interface RouteContext {
	// Each database's restore generation when the request arrived.
	arrivedGeneration?: Map<string, number>;
	method: string;
	segments: string[];
	params: URLSearchParams;
	body: Buffer;
	json: () => Record<string, unknown>;
}

export interface ExportJob {
	uuid: string;
	options: DumpOptions;
}

export interface ImportJob {
	uuid: string;
	response: Record<string, unknown>;
}

export type LoopbackState = ReturnType<typeof createLoopbackState>;

export function createLoopbackState(options: CloudflareApiOptions) {
	const databases = new Map<string, D1DatabaseState>();
	const faults = new FaultInjector();
	const requests: RequestRecord[] = [];
	const unknownRoutes: string[] = [];
	const exports = new Map<string, ExportJob>();
	const signedExports = new Map<string, { filename: string; sql: string }>();
	const uploads = new Map<string, { uuid: string; filename: string; content?: Buffer }>();
	const imports = new Map<string, ImportJob>();
	const log = options.log ?? ((line: string) => console.warn(line));
	const limits: D1Limits = { ...DEFAULT_D1_LIMITS, ...options.limits };
	const now = options.now ?? Date.now;
	// Rate limiting per token: request times in the window, and the end of a running block.
	const rate = { times: [] as number[], blockedUntil: 0 };
	// Per database: restore times (for the 10-per-10-minutes limit), a generation that a restore
	// bumps (a query in flight across it is cancelled), and when a failed export stops blocking.
	const restoreTimes = new Map<string, number[]>();
	const generation = new Map<string, number>();
	const exportBlockedUntil = new Map<string, number>();
	const activeExports = new Set<string>();
	// When each bookmark was first handed out, for the Time Travel retention window.
	const bookmarkTimes = new Map<string, number>();
	const seen = (bookmark: string) => {
		if (!bookmarkTimes.has(bookmark)) bookmarkTimes.set(bookmark, now());
		return bookmark;
	};
	const retentionMs = () => (limits.plan === "paid" ? 30 : 7) * DAY_MS;
	const workers = createWorkersApi({
		accountId: options.accountId,
		subdomain: options.workersSubdomain,
		hasD1Database: (id) => databases.has(id),
	});
	// Worker Previews (previews.ts) beside the scripts they belong to.
	const previews = createPreviewsApi({
		subdomain: workers.control.subdomain,
		hasD1Database: (id) => databases.has(id),
		hasScript: (worker) => workers.control.scripts().includes(worker),
		scriptSubdomain: (worker) => workers.control.subdomainOf(worker),
	});
	const accountName = options.accountName ?? "Loopback Account";

	const addDatabase = (spec: D1DatabaseSpec) => {
		if (databases.has(spec.uuid)) throw new Error(`database ${spec.uuid} already exists`);
		databases.set(spec.uuid, new D1DatabaseState(spec));
	};
	for (const spec of options.databases ?? []) addDatabase(spec);

	const stateOf = (uuid: string) => {
		const state = databases.get(uuid);
		if (state === undefined) throw new Error(`no database ${uuid}`);
		return state;
	};

	const findDatabase = (idOrName: string) =>
		databases.get(idOrName) ?? [...databases.values()].find((d) => d.name === idOrName);

	const describeDatabase = (d: D1DatabaseState) => ({
		uuid: d.uuid,
		name: d.name,
		created_at: d.createdAt,
		version: "production",
		num_tables: d.tableCount(),
		file_size: d.sizeBytes(),
		running_in_region: "WEUR",
		read_replication: { mode: "disabled" },
		jurisdiction: null,
	});

	const account = {
		id: options.accountId,
		name: accountName,
		type: "standard",
		created_on: "2024-01-01T00:00:00Z",
	};

	return {
		options,
		databases,
		faults,
		requests,
		unknownRoutes,
		exports,
		signedExports,
		uploads,
		imports,
		log,
		limits,
		now,
		rate,
		restoreTimes,
		generation,
		exportBlockedUntil,
		activeExports,
		bookmarkTimes,
		seen,
		retentionMs,
		workers,
		previews,
		account,
		addDatabase,
		stateOf,
		findDatabase,
		describeDatabase,
		// Set once the server listens: signed export and import URLs point back at it.
		origin: "",
	};
}

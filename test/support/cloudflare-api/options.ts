// The loopback's public surface: its options, D1's limits, the request log and the handle a test gets.
import type Database from "better-sqlite3";
import type { Fault, FaultHook, FaultInjector } from "../faults.ts";
import type { WorkersControl } from "../workers-api.ts";
import type { PreviewsControl } from "./previews.ts";

export const API_BASE_PATH = "/client/v4";

export interface D1DatabaseSpec {
	uuid: string;
	name: string;
}

export interface CloudflareApiOptions {
	token: string;
	accountId: string;
	accountName?: string;
	databases?: D1DatabaseSpec[];
	// The account's workers.dev subdomain (default "loopback": https://<script>.loopback.workers.dev).
	workersSubdomain?: string;
	// Where unknown routes are reported (default: console.warn); they also land in `unknownRoutes`.
	log?: (line: string) => void;
	// D1's platform limits, each overridable so a test can reach it quickly.
	limits?: Partial<D1Limits>;
	// The clock bookmark retention and rate-limit windows are judged by (default Date.now).
	now?: () => number;
}

export interface D1Limits {
	// developers.cloudflare.com/d1/platform/limits: "Maximum SQL query duration 30 seconds".
	requestMs: number;
	// developers.cloudflare.com/fundamentals/api/reference/limits: 1,200 requests per 5 minutes
	// per user; past it "all API calls for the next five minutes will be blocked" with 429.
	rateLimit: { requests: number; windowMs: number; blockMs: number };
	// developers.cloudflare.com/d1/platform/limits: "10 restores per 10 minutes (per database)".
	restores: { count: number; windowMs: number };
	// developers.cloudflare.com/d1/platform/limits: Time Travel 30 days (Workers Paid) / 7 (Free).
	plan: "paid" | "free";
	// workers-sdk#9519: after a refused export of a database with virtual tables, every query
	// fails with "Currently processing a long-running export" (reported as indefinite).
	exportBlockMs: number;
}

export const DEFAULT_D1_LIMITS: D1Limits = {
	requestMs: 30_000,
	rateLimit: { requests: 1200, windowMs: 5 * 60_000, blockMs: 5 * 60_000 },
	restores: { count: 10, windowMs: 10 * 60_000 },
	plan: "paid",
	exportBlockMs: 10 * 60_000,
};

// developers.cloudflare.com/d1/observability/debug-d1 (List of D1_ERRORs): the errors D1 says to
// retry, with their texts; a D1 team answer (community.cloudflare.com/t/923198) adds that a
// storage operation past 30 s resets the Durable Object and rejects pending requests.
export const D1_TRANSIENT_ERRORS = {
	codeUpdated: "D1 DB reset because its code was updated.",
	startupReset: "Internal error while starting up D1 DB storage caused object to be reset.",
	networkLost: "Network connection lost.",
	timeoutReset: "D1 DB storage operation exceeded timeout which caused object to be reset.",
} as const;

export interface RequestRecord {
	method: string;
	path: string;
	query: string;
	body?: string;
	// 0 when the socket was reset instead of answered.
	status: number;
	fault?: Fault["kind"];
}

export interface CloudflareApi {
	// e.g. http://127.0.0.1:43210/client/v4 (CLOUDFLARE_API_BASE_URL / SDK baseURL)
	url: string;
	origin: string;
	addDatabase(db: D1DatabaseSpec): void;
	// Direct access for seeding and assertions; a Time Travel restore replaces the handle.
	database(uuid: string): Database.Database;
	serialize(uuid: string): Buffer;
	currentBookmark(uuid: string): string;
	requests: RequestRecord[];
	unknownRoutes: string[];
	// Workers scripts, versions, deployments, secrets and assets (see workers-api.ts).
	workers: WorkersControl;
	// Worker Previews and their deployments (see previews.ts).
	previews: PreviewsControl;
	faults: FaultInjector;
	setFaultHook(hook: FaultHook | undefined): void;
	close(): Promise<void>;
}

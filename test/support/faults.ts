// Per-request fault injection for the loopback Cloudflare API: a FIFO queue of one-shot faults
// plus an optional hook, and a seeded generator for reproducible random fault tests.

export type Fault =
	// Answer with this status (and a Cloudflare error envelope) without executing the request.
	| {
			kind: "status";
			status: number;
			d1Code?: number;
			message?: string;
			retryAfterSeconds?: number;
	  }
	// Wait, then execute and answer normally.
	| { kind: "delay"; ms: number }
	// Destroy the socket without executing: the request certainly had no effect.
	| { kind: "reset-before" }
	// Execute and commit, then destroy the socket without answering: the effect is unknown to the caller.
	| { kind: "reset-after" };

export interface FaultRequest {
	method: string;
	// Path below the API base, without the query string (e.g. `/accounts/a/d1/database/x/query`).
	path: string;
	query: string;
	body?: string;
}

export type FaultHook = (request: FaultRequest) => Fault | undefined;

export interface FaultRule {
	fault: Fault;
	method?: string;
	// A string matches a path suffix (e.g. "/query"); a RegExp is tested against the whole path.
	path?: string | RegExp;
}

export interface InjectedFault {
	request: FaultRequest;
	fault: Fault;
}

const matches = (rule: FaultRule, request: FaultRequest) =>
	(rule.method === undefined || rule.method.toUpperCase() === request.method) &&
	(rule.path === undefined ||
		(typeof rule.path === "string"
			? request.path.endsWith(rule.path)
			: rule.path.test(request.path)));

export class FaultInjector {
	// Every fault actually applied, in order: what a test asserts against.
	readonly injected: InjectedFault[] = [];
	private readonly queue: FaultRule[] = [];
	private hook: FaultHook | undefined;

	// Queues one-shot faults; each is consumed by the first request it matches.
	enqueue(...faults: (Fault | FaultRule)[]): void {
		for (const f of faults) this.queue.push("fault" in f ? f : { fault: f });
	}

	setHook(hook: FaultHook | undefined): void {
		this.hook = hook;
	}

	clear(): void {
		this.queue.length = 0;
		this.hook = undefined;
		this.injected.length = 0;
	}

	get pending(): number {
		return this.queue.length;
	}

	// Queued faults win over the hook, so a test can force one outcome inside a random run.
	take(request: FaultRequest): Fault | undefined {
		const index = this.queue.findIndex((rule) => matches(rule, request));
		const fault = index === -1 ? this.hook?.(request) : this.queue.splice(index, 1)[0]?.fault;
		if (fault !== undefined) this.injected.push({ request, fault });
		return fault;
	}
}

// mulberry32: a tiny deterministic PRNG so a failing seed replays exactly.
export function seededRandom(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export interface RandomFaultOptions {
	seed: number;
	// Probability that a matching request gets a fault (0..1).
	rate: number;
	faults?: Fault[];
	match?: (request: FaultRequest) => boolean;
}

export const DEFAULT_RANDOM_FAULTS: Fault[] = [
	{ kind: "status", status: 500 },
	{ kind: "status", status: 503 },
	{ kind: "status", status: 429 },
	{ kind: "delay", ms: 20 },
	{ kind: "reset-before" },
	{ kind: "reset-after" },
];

// A hook that faults a seeded random subset of requests, reproducibly for a given seed.
export function randomFaultHook(options: RandomFaultOptions): FaultHook {
	const random = seededRandom(options.seed);
	const faults = options.faults ?? DEFAULT_RANDOM_FAULTS;
	return (request) => {
		if (options.match !== undefined && !options.match(request)) return undefined;
		if (random() >= options.rate) return undefined;
		return faults[Math.floor(random() * faults.length)];
	};
}

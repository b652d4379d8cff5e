// Time Travel (developers.cloudflare.com/d1/reference/time-travel): bookmarks by time, restores
// with the retention window and the restore rate limit, queries in flight cancelled by a restore.
import type { D1DatabaseState } from "../d1-database.ts";
import { fail, ok, type Reply, rateLimitReply } from "./envelope.ts";
import type { LoopbackState } from "./state.ts";

function checkBookmarkAge(state: LoopbackState, bookmark: string): Reply | undefined {
	const { bookmarkTimes, now, retentionMs, limits } = state;
	const at = bookmarkTimes.get(bookmark);
	if (at === undefined || now() - at <= retentionMs()) return undefined;
	return fail(400, {
		code: 7400,
		message: `The request is malformed: bookmark ${bookmark} is older than the Time Travel window (${limits.plan === "paid" ? 30 : 7} days)`,
	});
}

function restoreDatabase(state: LoopbackState, db: D1DatabaseState, bookmark: string): Reply {
	const { now, limits, restoreTimes, generation, seen } = state;
	const old = checkBookmarkAge(state, bookmark);
	if (old !== undefined) return old;
	const t = now();
	const times = (restoreTimes.get(db.uuid) ?? []).filter((x) => x > t - limits.restores.windowMs);
	if (times.length >= limits.restores.count) {
		return rateLimitReply(
			(times[0] as number) + limits.restores.windowMs - t,
			7429,
			`Too many restore operations: at most ${limits.restores.count} per ${limits.restores.windowMs / 60_000} minutes for a database`,
		);
	}
	const restored = db.restore(bookmark);
	restoreTimes.set(db.uuid, [...times, t]);
	generation.set(db.uuid, (generation.get(db.uuid) ?? 0) + 1);
	seen(restored.previous_bookmark);
	return ok({ ...restored, message: `Database restored to bookmark ${restored.bookmark}` });
}

// GET …/time_travel/bookmark: the current bookmark, or the one at `timestamp` within the window.
export function routeBookmark(
	state: LoopbackState,
	db: D1DatabaseState,
	params: URLSearchParams,
): Reply {
	const { seen, now, retentionMs } = state;
	const timestamp = params.get("timestamp");
	if (timestamp === null || timestamp === "") return ok({ bookmark: seen(db.currentBookmark()) });
	const at = Date.parse(timestamp);
	if (Number.isNaN(at) || now() - at > retentionMs()) {
		return fail(400, {
			code: 7400,
			message: `The request is malformed: invalid timestamp ${timestamp}${Number.isNaN(at) ? "" : " (older than the Time Travel window)"}`,
		});
	}
	return ok({ bookmark: seen(db.bookmarkAt(at)) });
}

// POST …/time_travel/restore: by `bookmark`, else by `timestamp`.
export function routeRestore(
	state: LoopbackState,
	db: D1DatabaseState,
	params: URLSearchParams,
): Reply {
	const timestamp = params.get("timestamp");
	const bookmark =
		params.get("bookmark") || (timestamp ? db.bookmarkAt(Date.parse(timestamp)) : undefined);
	if (bookmark === undefined) {
		return fail(400, {
			code: 7400,
			message: "The request is malformed: bookmark or timestamp is required",
		});
	}
	return restoreDatabase(state, db, bookmark);
}

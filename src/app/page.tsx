// Home page: published content with its project and view count, read from D1 on every request.
import { getCloudflareContext } from "@opennextjs/cloudflare";

export const dynamic = "force-dynamic";

type PublishedRow = {
	id: number;
	title: string;
	project_name: string;
	views: number;
	updated_at: string | null;
};

type Loaded = { ok: true; rows: PublishedRow[] } | { ok: false; error: string };

/** The part of a D1 binding this page uses. */
type D1Like = {
	prepare(sql: string): { all<T>(): Promise<{ results: T[] }> };
};

function isD1(value: unknown): value is D1Like {
	return (
		typeof value === "object" &&
		value !== null &&
		typeof (value as { prepare?: unknown }).prepare === "function"
	);
}

const PUBLISHED_SQL = `
SELECT c.id, c.title, p.name AS project_name, COALESCE(m.views, 0) AS views, c.updated_at
FROM content AS c
JOIN projects AS p ON p.id = c.project_id
LEFT JOIN content_metrics AS m ON m.content_id = c.id
WHERE c.status = 'published' AND p.archived = 0
ORDER BY c.updated_at DESC, c.id DESC
LIMIT 50`;

async function loadPublished(): Promise<Loaded> {
	try {
		const { env } = await getCloudflareContext({ async: true });
		const db: unknown = (env as unknown as Record<string, unknown>).DB;
		if (!isD1(db)) return { ok: false, error: "the DB binding is missing" };
		const { results } = await db.prepare(PUBLISHED_SQL).all<PublishedRow>();
		return { ok: true, rows: results };
	} catch (error) {
		return { ok: false, error: error instanceof Error ? error.message : String(error) };
	}
}

export default async function Home() {
	const loaded = await loadPublished();
	return (
		<main>
			<h1>Published content</h1>
			{!loaded.ok ? (
				<div className="error" role="alert">
					<p>
						<strong>Could not read the database.</strong>
					</p>
					<p>
						<code>{loaded.error}</code>
					</p>
				</div>
			) : loaded.rows.length === 0 ? (
				<p>No published content yet.</p>
			) : (
				<table>
					<thead>
						<tr>
							<th>Title</th>
							<th>Project</th>
							<th>Views</th>
						</tr>
					</thead>
					<tbody>
						{loaded.rows.map((row) => (
							<tr key={row.id}>
								<td>{row.title}</td>
								<td>{row.project_name}</td>
								<td>{row.views}</td>
							</tr>
						))}
					</tbody>
				</table>
			)}
		</main>
	);
}

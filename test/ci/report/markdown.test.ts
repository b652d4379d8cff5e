import { describe, expect, it } from "vitest";
import { renderMarkdown } from "../../../ci/report/markdown.ts";
import { failedReport, passedReport } from "./_sample.ts";

describe("renderMarkdown()", () => {
	it("should render a step table and a findings table, escaping | and newlines in cells", () => {
		expect(renderMarkdown(failedReport())).toMatchInlineSnapshot(`
			"## workers-pipeline ci: ❌ failed

			1 min 5 s · 2 error(s) · 1 warning(s) · 1 acknowledged

			| step | status | time | summary |
			| --- | --- | --- | --- |
			| migration-test | ok | 1.2 s | 2 migration(s) replayed \\| snapshot matches |
			| build | skipped | 0 ms | --no-build |
			| lint | **failed** | 980 ms | 1 error(s), 1 warning(s) |

			| severity | code | where | message |
			| --- | --- | --- | --- |
			| acknowledged | \`CATALOG_DUPLICATE_NUMBER\` | migrations/0002_b.sql | two migrations are numbered 0002 |
			| warning | \`D1_DESTRUCTIVE\` | migrations/0002_b.sql:3 | DROP TABLE loses data |
			| error | \`D1_TRANSACTION\` | migrations/0002_b.sql:1:1 | D1 refuses BEGIN<br>remove it |
			| error | \`TS2322\` | src/a.ts:4:7 | x \\| y |
			"
		`);
	});

	it("should leave out the findings table when there are none", () => {
		expect(renderMarkdown(passedReport())).toMatchInlineSnapshot(`
			"## workers-pipeline lint: ✅ passed

			420 ms · 0 error(s) · 0 warning(s)

			| step | status | time | summary |
			| --- | --- | --- | --- |
			| lint | ok | 420 ms | clean |
			"
		`);
	});
});

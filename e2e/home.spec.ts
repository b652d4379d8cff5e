// The home page renders the published rows of the local D1: the demo rows of migration 0008 and
// the row seed.sql adds; drafts never show.
import { expect, test } from "@playwright/test";

test("the home page lists published content with project and views", async ({ page }) => {
	const response = await page.goto("/");
	expect(response?.status()).toBe(200);
	await expect(page.getByRole("heading", { name: "Published content" })).toBeVisible();
	const rows = page.locator("tbody tr");
	await expect(rows).toHaveCount(3);
	await expect(page.getByRole("row", { name: /Seeded for end-to-end tests/ })).toContainText(
		"Analytical Engine5",
	);
	await expect(page.getByRole("row", { name: /Notes on the engine/ })).toContainText("42");
	await expect(page.getByRole("row", { name: /A-0 system/ })).toContainText("Compiler17");
	await expect(page.getByText("Seeded draft")).toHaveCount(0);
	await expect(page.getByText("Draft: COBOL")).toHaveCount(0);
});

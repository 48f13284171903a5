// A client of scrmgw's admin API generated from gateway/api/openapi.yaml
// (openapi-typescript types + openapi-fetch): it creates a brand, a store,
// a member, reads them back and pages the stores, with typed bodies.
import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

type Store = components["schemas"]["Store"];

async function main() {
  const [base, token] = process.argv.slice(2);
  const api = createClient<paths>({ baseUrl: base + "/api/v1", headers: { Authorization: `Bearer ${token}` } });
  const fail = (what: string, x: unknown): never => { throw new Error(what + ": " + JSON.stringify(x)); };

  const b = await api.POST("/brands", { body: { id: "acme", name: "ACME" } });
  if (b.response.status !== 201 || !b.data) fail("create brand", b.error);
  const st = await api.POST("/stores", { body: { id: "sh-1", name: "静安店", brands: ["acme"], lat: 31.23, lng: 121.47 } });
  if (st.response.status !== 201 || !st.data) fail("create store", st.error);
  const got = await api.GET("/stores/{id}", { params: { path: { id: "sh-1" } } });
  const store: Store | undefined = got.data;
  if (!store || store.name !== "静安店" || store.brands[0] !== "acme") fail("read store", got);
  const m = await api.POST("/members", { body: { brand: "acme", phone: "13800138000", name: "陈女士" } });
  if (m.response.status !== 201 || !m.data) fail("create member", m.error);
  const found = await api.GET("/members", { params: { query: { phone: "+8613800138000" } } });
  if (found.data?.id !== m.data!.id) fail("find member", found);
  const missing = await api.GET("/stores/{id}", { params: { path: { id: "nowhere" } } });
  if (missing.response.status !== 404 || missing.error?.error.code !== "not_found") fail("404 shape", missing);
  const page = await api.GET("/stores", { params: { query: { limit: 1 } } });
  if (page.data?.items.length !== 1) fail("page", page);
  console.log(`ok: brand ${b.data!.id}, store ${store!.id} (${store!.time_zone}), member ${m.data!.id} found by phone ${found.data!.phone}, 404 code ${missing.error!.error.code}`);
}
main().catch((e) => { console.error(e); process.exit(1); });

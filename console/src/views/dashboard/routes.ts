// 数据看板: the dashboard of the caller's subtree (any level), drilling down to communities. The node, the
// period (year or month) and a day of it live in the query, so drilling and the back button work.
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: 'figures/dashboard', name: 'dashboard', component: () => import('./Dashboard.vue'),
    meta: { title: 'dashboard.title', permission: 'aggregates:read', menu: { group: 'figures', order: 0 } } },
] as RouteRecordRaw[]

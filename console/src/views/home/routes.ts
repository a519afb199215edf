// The worker's day (or, for a figures-only role, the dashboard), one's own password, and the page a refused route lands on.
import type { RouteRecordRaw } from 'vue-router'
import { can } from '@/session'

// A role with none of the worker's tasks (nor the operator's) but the figures — a district analyst, a
// department feed — would see an empty 工作台: it lands on the dashboard instead.
const figuresOnly = () => can('aggregates:read') && !['consultation:read', 'points:verify', 'notification:approve',
  'notification:broadcast', 'people:read', 'instance:read'].some((p) => can(p))

export default [
  { path: '', name: 'workbench', component: () => import('./Workbench.vue'),
    beforeEnter: () => (figuresOnly() ? { name: 'dashboard' } : true),
    meta: { title: 'workbench.title', menu: { group: 'home', order: 0 } } },
  { path: 'password', name: 'password', component: () => import('./Password.vue'), meta: { title: 'password.title' } },
  { path: 'forbidden', name: 'forbidden', component: () => import('./Forbidden.vue'), meta: { title: 'forbidden.title' } },
] as RouteRecordRaw[]

// The worker's day, one's own password, and the page a refused route lands on.
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: '', name: 'workbench', component: () => import('./Workbench.vue'),
    meta: { title: 'workbench.title', menu: { group: 'home', order: 0 } } },
  { path: 'password', name: 'password', component: () => import('./Password.vue'), meta: { title: 'password.title' } },
  { path: 'forbidden', name: 'forbidden', component: () => import('./Forbidden.vue'), meta: { title: 'forbidden.title' } },
] as RouteRecordRaw[]

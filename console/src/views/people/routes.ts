// 居民与户: searching the register, registering, one resident's full record (audited) with move,
// departure and death, a household with its members, and the bulk import of residents and party members.
import type { RouteRecordRaw } from 'vue-router'

const READ = 'people:read'
const WRITE = 'people:write'

export default [
  { path: 'residents', name: 'people-residents', component: () => import('./Residents.vue'),
    meta: { title: 'people.title.residents', permission: READ, menu: { group: 'people', order: 0 } } },
  { path: 'residents/new', name: 'people-resident-new', component: () => import('./ResidentNew.vue'),
    meta: { title: 'people.title.new', permission: WRITE, menu: { group: 'people', order: 1 } } },
  { path: 'residents/:id(\\d+)', name: 'people-resident', component: () => import('./ResidentDetail.vue'), props: true,
    meta: { title: 'people.title.resident', permission: READ } },
  { path: 'households/:id(\\d+)', name: 'people-household', component: () => import('./Household.vue'), props: true,
    meta: { title: 'people.title.household', permission: READ } },
  { path: 'imports', name: 'people-imports', component: () => import('./Imports.vue'),
    meta: { title: 'people.title.imports', permission: WRITE, menu: { group: 'people', order: 2 } } },
] as RouteRecordRaw[]

// 系统管理: the staff accounts of the console and their sign-in audit (street admins, operators).
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: 'admin/accounts', name: 'accounts', component: () => import('./Accounts.vue'),
    meta: { title: 'admin.title.accounts', permission: 'accounts:admin', menu: { group: 'admin', order: 0 } } },
  { path: 'admin/sign-ins', name: 'sign-ins', component: () => import('./SignIns.vue'),
    meta: { title: 'admin.title.signIns', permission: 'accounts:admin', menu: { group: 'admin', order: 1 } } },
] as RouteRecordRaw[]

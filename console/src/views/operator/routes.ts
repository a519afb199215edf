// 运维: the instance's health (street admins, operators) and the API tokens of its scope, in the 管理 group
// after 账号管理 (0) and 登录记录 (1).
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: 'operator/instance', name: 'instance', component: () => import('./Instance.vue'),
    meta: { title: 'operator.title.instance', permission: 'instance:read', menu: { group: 'admin', order: 5 } } },
  { path: 'operator/tokens', name: 'tokens', component: () => import('./Tokens.vue'),
    meta: { title: 'operator.title.tokens', permission: 'accounts:admin', menu: { group: 'admin', order: 6 } } },
] as RouteRecordRaw[]

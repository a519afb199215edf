// 积分: verification queue, logging a service record, records, accounts, rewards and redemptions.
import type { RouteRecordRaw } from 'vue-router'

// An organisation's leader holds points:read, but the points service keeps accounts and redemptions
// from them: neither in their menu nor reachable (meta.notRoles), rather than a page that can only fail.
const LEADERS = ['organization_leader']

export default [
  { path: 'points/verify', name: 'points-verify', component: () => import('./VerifyQueue.vue'),
    meta: { title: 'points.nav.verify', permission: 'points:verify', menu: { group: 'points', order: 0 } } },
  { path: 'points/records/new', name: 'points-record-new', component: () => import('./RecordNew.vue'),
    meta: { title: 'points.nav.newRecord', permission: 'points:write', menu: { group: 'points', order: 1 } } },
  { path: 'points/records', name: 'points-records', component: () => import('./Records.vue'),
    meta: { title: 'points.nav.records', permission: 'points:read', menu: { group: 'points', order: 2 } } },
  { path: 'points/accounts', name: 'points-accounts', component: () => import('./Accounts.vue'),
    meta: { title: 'points.nav.accounts', permission: 'points:read', notRoles: LEADERS, menu: { group: 'points', order: 3 } } },
  { path: 'points/accounts/:id(\\d+)', name: 'points-account', component: () => import('./AccountDetail.vue'),
    props: true, meta: { title: 'points.account.title', permission: 'points:read', notRoles: LEADERS } },
  { path: 'points/rewards', name: 'points-rewards', component: () => import('./Rewards.vue'),
    meta: { title: 'points.nav.rewards', permission: 'points:read', menu: { group: 'points', order: 4 } } },
  { path: 'points/redemptions', name: 'points-redemptions', component: () => import('./Redemptions.vue'),
    meta: { title: 'points.nav.redemptions', permission: 'points:read', notRoles: LEADERS, menu: { group: 'points', order: 5 } } },
] as RouteRecordRaw[]

// 通知与广播: emergency broadcasts (two-person approval) and targeted notices.
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: 'broadcasts', name: 'broadcasts', component: () => import('./BroadcastList.vue'),
    meta: { title: 'notices.title.broadcasts', permission: 'notification:read', menu: { group: 'notices', order: 0 } } },
  { path: 'broadcasts/new', name: 'broadcast-new', component: () => import('./BroadcastNew.vue'),
    meta: { title: 'notices.title.newBroadcast', permission: 'notification:broadcast', menu: { group: 'notices', order: 1 } } },
  { path: 'broadcasts/:id(\\d+)', name: 'broadcast', component: () => import('./BroadcastDetail.vue'),
    meta: { title: 'notices.title.broadcast', permission: 'notification:read' } },
  { path: 'notices/new', name: 'notice-new', component: () => import('./NoticeNew.vue'),
    meta: { title: 'notices.title.newNotice', permission: 'notification:send', menu: { group: 'notices', order: 2 } } },
  { path: 'notices/:id(\\d+)', name: 'notice', component: () => import('./NoticeDetail.vue'),
    meta: { title: 'notices.title.notice', permission: 'notification:read' } },
] as RouteRecordRaw[]

// 三上三下: the matters board and raising a matter (一上一下), agenda items and meetings (二上二下),
// decisions, tasks and publication (三上三下).
import type { RouteRecordRaw } from 'vue-router'

const READ = 'consultation:read'
const WRITE = 'consultation:write'

export default [
  { path: 'matters', name: 'consult-board', component: () => import('./Board.vue'),
    meta: { title: 'consult.title.board', permission: READ, menu: { group: 'consultation', order: 0 } } },
  { path: 'matters/new', name: 'consult-new', component: () => import('./MatterNew.vue'),
    meta: { title: 'consult.title.new', permission: WRITE, menu: { group: 'consultation', order: 1 } } },
  { path: 'matters/:id(\\d+)', name: 'consult-matter', component: () => import('./MatterDetail.vue'), props: true,
    meta: { title: 'consult.title.matter', permission: READ } },
  { path: 'agenda-items/:id(\\d+)', name: 'consult-item', component: () => import('./AgendaItem.vue'), props: true,
    meta: { title: 'consult.title.item', permission: READ } },
  { path: 'meetings', name: 'consult-meetings', component: () => import('./Recent.vue'),
    meta: { title: 'consult.title.recent', permission: READ, menu: { group: 'consultation', order: 2 } } },
  { path: 'meetings/new', name: 'consult-meeting-new', component: () => import('./MeetingNew.vue'),
    meta: { title: 'consult.title.meetingNew', permission: WRITE } },
  { path: 'meetings/:id(\\d+)', name: 'consult-meeting', component: () => import('./Meeting.vue'), props: true,
    meta: { title: 'consult.title.meeting', permission: READ } },
  { path: 'decisions/:id(\\d+)', name: 'consult-decision', component: () => import('./Decision.vue'), props: true,
    meta: { title: 'consult.title.decision', permission: READ } },
] as RouteRecordRaw[]

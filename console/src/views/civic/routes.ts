// 党员、社会组织与志愿服务队、社区工作者: the party members of the street under dual management (报到,
// 报到率), the organisations and teams with their members and projects, and the street's community
// workers with their annual assessments.
import type { RouteRecordRaw } from 'vue-router'

export default [
  { path: 'party', name: 'civic-party', component: () => import('./PartyMembers.vue'),
    meta: { title: 'civic.title.party', permission: 'people:read', menu: { group: 'people', order: 10 } } },
  { path: 'party/report-rate', name: 'civic-report-rate', component: () => import('./ReportRate.vue'),
    meta: { title: 'civic.title.rate', permission: 'people:read', menu: { group: 'people', order: 11 } } },
  { path: 'party/:resident_id(\\d+)', name: 'civic-party-member', component: () => import('./PartyMemberDetail.vue'),
    props: true, meta: { title: 'civic.title.member', permission: 'people:read' } },
  { path: 'organizations', name: 'civic-organizations', component: () => import('./Organizations.vue'),
    meta: { title: 'civic.title.orgs', permission: 'orgs:read', menu: { group: 'people', order: 12 } } },
  { path: 'organizations/new', name: 'civic-organization-new', component: () => import('./OrganizationNew.vue'),
    meta: { title: 'civic.title.orgNew', permission: 'orgs:write' } },
  { path: 'organizations/:id(\\d+)', name: 'civic-organization', component: () => import('./OrganizationDetail.vue'),
    props: true, meta: { title: 'civic.title.org', permission: 'orgs:read' } },
  { path: 'workers', name: 'civic-workers', component: () => import('./Workers.vue'),
    meta: { title: 'civic.title.workers', permission: 'workers:read', menu: { group: 'people', order: 13 } } },
  { path: 'workers/:id(\\d+)', name: 'civic-worker', component: () => import('./WorkerDetail.vue'),
    props: true, meta: { title: 'civic.title.worker', permission: 'workers:read' } },
] as RouteRecordRaw[]

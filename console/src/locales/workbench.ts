// 工作台: the worker's day.
export default {
  zh: {
    workbench: {
      title: '工作台',
      hello: '{name}，您好',
      quick: '常用功能',
      nothing: '您的角色在工作台上没有待办事项',
      all: '查看全部',
      links: { residents: '居民查询', register: '居民登记', imports: '批量导入', raise: '登记议题' },
      matters: {
        title: '议题办理期限', red: '已逾期', yellow: '2天内到期', blue: '其他在办', none: '暂无在办议题',
        screening: '受理', settle: '办结', overdueBy: '{what}已逾期 {n} 天', dueToday: '今天{what}到期',
        dueIn: '{what}期限还剩 {n} 天', urgent: '紧急',
      },
      status: {
        raised: '待受理', escalated: '已上报街道', answered: '已答复', deliberating: '协商中', referred: '已转办',
        decided: '已决策', implementing: '实施中', published: '已公示', settled: '已办结', rejected: '不予受理', merged: '已合并',
      },
      records: {
        title: '待核销服务记录', go: '去核销', pending: '待核销', expiring: '3天内过期', none: '暂无待核销的服务记录',
        org: '组织', hours: '{n} 小时', expires: '{at} 前核销',
      },
      broadcasts: {
        title: '待审批紧急广播', toApprove: '待我审批', mine: '我提交待审', none: '暂无待审批的广播',
        waitingYou: '等待您审批', waitingOther: '等待另一位街道管理员审批',
      },
      party: {
        title: '党员社区报到', unreported: '未报到党员', rate: '报到率（{r}/{m}）', none: '党员均已报到',
        age: '{n} 岁', category: { on_the_job: '在职党员', retired: '退休党员', mobile: '流动党员', student: '学生党员' },
      },
    },
  },
  en: {
    workbench: {
      title: 'My day',
      hello: 'Hello, {name}',
      quick: 'Shortcuts',
      nothing: 'Your role has no work listed here',
      all: 'See all',
      links: { residents: 'Find residents', register: 'Register a resident', imports: 'Bulk import', raise: 'Raise a matter' },
      matters: {
        title: 'Matter deadlines', red: 'Overdue', yellow: 'Due within 2 days', blue: 'Other open', none: 'No open matters',
        screening: 'screening', settle: 'settlement', overdueBy: '{what} overdue by {n} days', dueToday: '{what} due today',
        dueIn: '{what} due in {n} days', urgent: 'Urgent',
      },
      status: {
        raised: 'Raised', escalated: 'Escalated to street', answered: 'Answered', deliberating: 'In consultation',
        referred: 'Referred', decided: 'Decided', implementing: 'Being carried out', published: 'Published',
        settled: 'Settled', rejected: 'Rejected', merged: 'Merged',
      },
      records: {
        title: 'Service records to verify', go: 'Verify', pending: 'Pending', expiring: 'Expire within 3 days',
        none: 'No service records waiting', org: 'Organisation', hours: '{n} h', expires: 'verify by {at}',
      },
      broadcasts: {
        title: 'Broadcasts awaiting approval', toApprove: 'For me to approve', mine: 'Mine, waiting', none: 'No broadcasts waiting',
        waitingYou: 'Waiting for your approval', waitingOther: 'Waiting for another street admin',
      },
      party: {
        title: 'Party members reporting', unreported: 'Not yet reported', rate: 'Report rate ({r}/{m})', none: 'Every member has reported',
        age: 'age {n}', category: { on_the_job: 'Employed', retired: 'Retired', mobile: 'Mobile', student: 'Student' },
      },
    },
  },
}

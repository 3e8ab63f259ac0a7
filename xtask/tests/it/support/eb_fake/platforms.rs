//! The platforms: ListPlatformVersions (what `env create` picks from), and what the EB CLI
//! reads of an environment's platform (`eb status` and `eb deploy`: DescribePlatformVersion,
//! then ListPlatformBranches for its branch). Sources: the API reference and service model.

use super::query::{self, Form, members, page};
use super::state::World;
use super::xml::{Answer, error, ok};

/// The platform versions listed: (branch, version, lifecycle state). The newest Docker on
/// Amazon Linux 2023 is not the one marked recommended, as happens between releases; and
/// versions sort as numbers (4.10 after 4.9).
pub const PLATFORMS: [(&str, &str, &str); 5] = [
    ("Docker running on 64bit Amazon Linux 2023", "4.4.0", ""),
    ("Docker running on 64bit Amazon Linux 2023", "4.9.1", ""),
    ("Docker running on 64bit Amazon Linux 2023", "4.10.0", "Recommended"),
    ("Docker running on 64bit Amazon Linux 2023", "4.10.1", ""),
    ("Docker running on 64bit Amazon Linux 2", "3.9.9", "Recommended"),
];

/// `arn:aws:elasticbeanstalk:REGION::platform/NAME/VERSION`: AWS's platforms have no
/// account in their ARN (the EB CLI takes one with an account for a custom platform).
pub fn platform_arn((branch, version, _): (&str, &str, &str)) -> String {
    format!("arn:aws:elasticbeanstalk:us-east-1::platform/{branch}/{version}")
}

pub fn platform_of(arn: &str) -> Option<(&'static str, &'static str, &'static str)> {
    PLATFORMS.iter().copied().find(|p| platform_arn(*p) == arn)
}

impl World {
    /// ListPlatformVersions: `Filters` (Type, Operator, Values) all apply; `MaxRecords` and
    /// `NextToken` page.
    pub fn list_platform_versions(&self, form: &Form) -> Answer {
        let mut matching: Vec<(&str, &str, &str)> = PLATFORMS.to_vec();
        for n in 1.. {
            let field = |f: &str| form.get(&format!("Filters.member.{n}.{f}")).cloned();
            let Some(kind) = field("Type") else { break };
            let operator = field("Operator").unwrap_or_else(|| "=".into());
            let values = members(form, &format!("Filters.member.{n}.Values"));
            let value = |p: &(&str, &str, &str)| match kind.as_str() {
                "PlatformBranchName" | "PlatformName" => Some(p.0.to_owned()),
                "PlatformVersion" => Some(p.1.to_owned()),
                "PlatformLifecycleState" => Some(p.2.to_owned()),
                "PlatformStatus" => Some("Ready".to_owned()),
                _ => None,
            };
            if value(&PLATFORMS[0]).is_none() {
                return error("InvalidParameterValue", &format!("Invalid filter type: {kind}"));
            }
            let test = |v: &str, w: &str| match operator.as_str() {
                "=" => Some(v == w),
                "!=" => Some(v != w),
                "contains" => Some(v.contains(w)),
                "begins_with" => Some(v.starts_with(w)),
                "ends_with" => Some(v.ends_with(w)),
                _ => None,
            };
            if test("", "").is_none() {
                return error("InvalidParameterValue", &format!("Invalid operator: {operator}"));
            }
            matching.retain(|p| {
                let v = value(p).unwrap_or_default();
                values.iter().any(|w| test(&v, w) == Some(true))
            });
        }
        let (listed, next) = page(form, &matching, self.config.page_size);
        ok("ListPlatformVersions", |xml| {
            xml.list("PlatformSummaryList", listed, |xml, p| {
                xml.el("PlatformArn", &platform_arn(*p))
                    .el("PlatformOwner", "AWSElasticBeanstalk")
                    .el("PlatformStatus", "Ready")
                    .el("PlatformCategory", "Docker")
                    .el("PlatformBranchName", p.0)
                    .el("PlatformVersion", p.1)
                    .opt("PlatformLifecycleState", (!p.2.is_empty()).then_some(p.2));
            });
            xml.opt("NextToken", next.as_deref());
        })
    }

    /// DescribePlatformVersion, as `eb status` and `eb deploy` read it.
    pub fn describe_platform_version(&self, form: &Form) -> Answer {
        let arn = form.get("PlatformArn").cloned().unwrap_or_default();
        let Some(platform) = platform_of(&arn) else {
            return error("InvalidParameterValue", &format!("No Platform named '{arn}' found."));
        };
        ok("DescribePlatformVersion", |xml| {
            xml.node("PlatformDescription", |xml| {
                xml.el("PlatformArn", &arn)
                    .el("PlatformOwner", "AWSElasticBeanstalk")
                    .el("PlatformName", platform.0)
                    .el("PlatformVersion", platform.1)
                    .el("SolutionStackName", &query::solution_stack(&arn))
                    .el("PlatformStatus", "Ready")
                    .el("PlatformCategory", "Docker")
                    .el("PlatformBranchName", platform.0)
                    .opt("PlatformLifecycleState", (!platform.2.is_empty()).then_some(platform.2));
            });
        })
    }

    /// ListPlatformBranches: the branches, `BranchName` filter (`=`) applied.
    pub fn list_platform_branches(&self, form: &Form) -> Answer {
        let mut branches: Vec<&str> = PLATFORMS.iter().map(|p| p.0).collect();
        branches.dedup();
        for n in 1.. {
            let field = |f: &str| form.get(&format!("Filters.member.{n}.{f}")).cloned();
            let Some(attribute) = field("Attribute") else { break };
            let values = members(form, &format!("Filters.member.{n}.Values"));
            if attribute == "BranchName" {
                branches.retain(|b| values.iter().any(|v| v == b));
            }
        }
        ok("ListPlatformBranches", |xml| {
            xml.list("PlatformBranchSummaryList", &branches, |xml, b| {
                xml.el("PlatformName", "Docker")
                    .el("BranchName", b)
                    .el("LifecycleState", "Supported")
                    .el("BranchOrder", "1");
            });
        })
    }
}

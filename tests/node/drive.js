// Drives iai-server with the official Node SDK (tencentcloud-sdk-nodejs) and prints one JSON line per case:
// {"case", "ok": true, "result"} or {"case", "ok": false, "code", "message"}.
// Usage: node drive.js PORT SECRET_ID SECRET_KEY GROUP_PREFIX
// Only the iai service of the umbrella package is loaded.
const { iai } = require("tencentcloud-sdk-nodejs/tencentcloud/services/iai");

const [port, secretId, secretKey, prefix] = process.argv.slice(2);

function client({ host = "127.0.0.1", method = "POST", sign, key = secretKey, version = "v20180301" } = {}) {
  const profile = { httpProfile: { endpoint: `${host}:${port}`, protocol: "http://", reqMethod: method } };
  if (sign) profile.signMethod = sign;
  return new iai[version].Client({ credential: { secretId, secretKey: key }, region: "ap-guangzhou", profile });
}

async function run(name, fn) {
  try {
    console.log(JSON.stringify({ case: name, ok: true, result: await fn() }));
  } catch (e) {
    console.log(JSON.stringify({ case: name, ok: false, code: e.code, message: e.message }));
  }
}

(async () => {
  const gid = `${prefix}-node`;
  await run("tc3_post_create", () =>
    client().CreateGroup({ GroupId: gid, GroupName: `节点 ${gid} A&B=c`, GroupExDescriptions: ["部门", "工号"], Tag: "n" }));
  await run("tc3_get_info", () => client({ method: "GET" }).GetGroupInfo({ GroupId: gid }));
  await run("hmacsha256_post_modify", () =>
    client({ sign: "HmacSHA256" }).ModifyGroup({
      GroupId: gid, Tag: "changed",
      GroupExDescriptionInfos: [{ GroupExDescriptionIndex: 1, GroupExDescription: "编号" }],
    }));
  await run("hmacsha256_get_list", () => client({ method: "GET", sign: "HmacSHA256" }).GetGroupList({ Limit: 1000 }));
  await run("hmacsha1_post_num", () => client({ sign: "HmacSHA1" }).GetPersonListNum({ GroupId: gid }));
  await run("localhost_tc3_post_info", () => client({ host: "localhost" }).GetGroupInfo({ GroupId: gid }));
  await run("localhost_tc3_get_info", () => client({ host: "localhost", method: "GET" }).GetGroupInfo({ GroupId: gid }));
  await run("v20200303_info", () => client({ version: "v20200303" }).GetGroupInfo({ GroupId: gid }));
  await run("error_not_found", () => client().GetGroupInfo({ GroupId: `${gid}-absent` }));
  await run("error_wrong_secret", () => client({ key: "wrong" }).GetGroupInfo({ GroupId: gid }));
  await run("tc3_post_delete", () => client().DeleteGroup({ GroupId: gid }));
  await run("after_delete", () => client().GetGroupInfo({ GroupId: gid }));
})();

// The mockttp peer of run.sh: one rule answering the benchmark's POST with the emulator's
// own answer bytes, traffic recording off (as the reference's tuned setup).
//   NODE_PATH=emulator/bench/.peers/node_modules node emulator/bench/mockttp-stub.js PORT ANSWER_FILE
const fs = require('fs');
const { getLocal } = require('mockttp');

async function main() {
    const [port, answerFile] = process.argv.slice(2);
    const body = fs.readFileSync(answerFile, 'utf8');
    const server = getLocal({ recordTraffic: false });
    await server.start(Number(port));
    await server
        .forPost('/v21.0/106540352242922/messages')
        .thenReply(200, body, { 'content-type': 'application/json' });
    await server.forGet('/').thenReply(200, 'ok');
    console.log(`mockttp listening on ${server.url}`);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});

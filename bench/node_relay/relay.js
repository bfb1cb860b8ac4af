// The chat benchmark's baseline: the same wire traffic as After Hours' send_message, relayed
// by a bare socket.io server with nothing stored. Usage: node relay.js PORT CHATS_JSON
const http = require("http");
const { Server } = require("socket.io");
const { randomUUID } = require("crypto");

const port = Number(process.argv[2]);
const chats = require(process.argv[3]); // {matchId: [userA, userB]}

const io = new Server(http.createServer().listen(port, "127.0.0.1"), { cors: { origin: "*" } });

io.use((socket, next) => {
  const userId = socket.handshake.auth && socket.handshake.auth.userId;
  if (!userId) return next(new Error("UNAUTHORIZED"));
  socket.data.userId = userId;
  next();
});

io.on("connection", (socket) => {
  socket.join(`user:${socket.data.userId}`);
  socket.on("after_hours:send_message", (payload, ack) => {
    const pair = chats[payload && payload.matchId];
    if (!pair || !pair.includes(socket.data.userId)) {
      return ack({ ok: false, error: { code: "NOT_FOUND", message: "Match not found" } });
    }
    const message = {
      id: randomUUID(),
      matchId: payload.matchId,
      senderId: socket.data.userId,
      content: payload.content,
      createdAt: new Date().toISOString(),
      clientMessageId: payload.clientMessageId || null,
    };
    io.to(pair.map((u) => `user:${u}`)).emit("after_hours:message", message);
    ack({ ok: true, message });
  });
});
console.log(`relay listening on ${port}`);

console.log("berth platform: not wired yet");
